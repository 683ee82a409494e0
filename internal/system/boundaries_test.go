package system_test

// The import boundaries of the repository, held by parsing every Go file
// (tests included) under internal/, cmd/ and test/:
//
//   - The chain's application (internal/chain/app) and the node that
//     embeds it (internal/node) are assembled in one place, this package.
//     The services (coordinator, miner, wallet daemon) reach the chain
//     through its REST API (internal/rpc) and the CLI through this package
//     or the REST API; neither imports the app or the node.
//   - The scheduler (internal/coordinator/sched) is a pure function over a
//     snapshot: it does no I/O.
//   - The chain (internal/chain/...) imports only chain packages,
//     internal/address and libraries.

import (
	"go/parser"
	"go/token"
	"io/fs"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

const module = "github.com/aitbc/aitbc/"

// mayImport lists, for each guarded package, who may import it besides
// the package's own tests, and why.
var mayImport = map[string]map[string]string{
	"internal/node": {
		"internal/system":  "the composition root builds the node",
		"internal/testnet": "lays out node homes for multi-node networks: keys, genesis, a joining node's genesis file",
		"internal/bench":   "measures the chain itself: submits to the mempool in-process and reads the block store, past the REST API",
	},
	"internal/chain/app": {
		"internal/chain/...": "the chain's own packages",
		"internal/node":      "embeds the application in CometBFT",
		"internal/system":    "writes a new chain's genesis",
		"internal/testnet":   "writes a multi-validator genesis with the chain's parameters",
		"internal/bench":     "signs its load with the chain's minimum fee",
		"test/fault":         "signs its load with the chain's minimum fee",
	},
}

// ioImports are standard packages that reach the network, the file
// system, the operating system or a database, or write logs.
var ioImports = []string{
	"net", "net/...", "os", "os/...", "io/fs", "io/ioutil", "path/filepath", "syscall",
	"database/...", "log", "log/...", "plugin", "runtime/pprof", "embed",
}

// matches reports whether pkg is pattern, or under it for "x/...".
func matches(pattern, pkg string) bool {
	if p, ok := strings.CutSuffix(pattern, "/..."); ok {
		return pkg == p || strings.HasPrefix(pkg, p+"/")
	}
	return pkg == pattern
}

// goFile is one parsed file: its package's directory relative to the
// repository root, and its imports (module paths trimmed).
type goFile struct {
	path, dir string
	imports   []string
}

func parseRepo(t *testing.T) []goFile {
	t.Helper()
	root := filepath.Join("..", "..")
	fset := token.NewFileSet()
	var files []goFile
	for _, top := range []string{"internal", "cmd", "test"} {
		err := filepath.WalkDir(filepath.Join(root, top), func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() && (d.Name() == "testdata" || strings.HasPrefix(d.Name(), ".")) {
				return filepath.SkipDir
			}
			if d.IsDir() || !strings.HasSuffix(p, ".go") {
				return nil
			}
			f, err := parser.ParseFile(fset, p, nil, parser.ImportsOnly)
			if err != nil {
				return err
			}
			rel, _ := filepath.Rel(root, p)
			rel = filepath.ToSlash(rel)
			gf := goFile{path: rel, dir: path.Dir(rel)}
			for _, imp := range f.Imports {
				ip, _ := strconv.Unquote(imp.Path.Value)
				gf.imports = append(gf.imports, ip)
			}
			files = append(files, gf)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if len(files) < 100 {
		t.Fatalf("found only %d Go files: is the walk rooted at the repository?", len(files))
	}
	return files
}

// TestOnlyTheCompositionRootAssemblesTheChain: no service package and no
// CLI command imports the node or the chain's application.
func TestOnlyTheCompositionRootAssemblesTheChain(t *testing.T) {
	for _, f := range parseRepo(t) {
		for _, ip := range f.imports {
			pkg, ok := strings.CutPrefix(ip, module)
			if !ok {
				continue
			}
			allowed, guarded := mayImport[pkg]
			if !guarded || f.dir == pkg {
				continue
			}
			ok = false
			for who := range allowed {
				if matches(who, f.dir) {
					ok = true
				}
			}
			if !ok {
				t.Errorf("%s imports %s: only internal/system assembles the chain; use internal/system or the REST API (internal/rpc)", f.path, pkg)
			}
		}
	}
}

// TestSchedulerDoesNoIO: the scheduler imports no package that reaches the
// network, files, the OS, a database or a log, no library, and of this
// module only addresses and the chain's data types (not its store or its
// application).
func TestSchedulerDoesNoIO(t *testing.T) {
	n := 0
	for _, f := range parseRepo(t) {
		if !matches("internal/coordinator/sched/...", f.dir) || strings.HasSuffix(f.path, "_test.go") {
			continue
		}
		n++
		for _, ip := range f.imports {
			first, _, _ := strings.Cut(ip, "/")
			switch pkg, ours := strings.CutPrefix(ip, module); {
			case ours:
				if !matches("internal/address", pkg) && !(matches("internal/chain/...", pkg) && !matches("internal/chain/state/...", pkg) && !matches("internal/chain/app/...", pkg)) {
					t.Errorf("%s imports %s: the scheduler uses only addresses and the chain's data types", f.path, ip)
				}
			case strings.Contains(first, "."):
				t.Errorf("%s imports the library %s: the scheduler is plain Go over a snapshot", f.path, ip)
			default:
				for _, bad := range ioImports {
					if matches(bad, ip) {
						t.Errorf("%s imports %s: the scheduler does no I/O", f.path, ip)
						break
					}
				}
			}
		}
	}
	if n == 0 {
		t.Fatal("no scheduler source found")
	}
}

// TestChainImportsOnlyTheChain: the chain's packages import chain
// packages, internal/address and libraries, never a service.
func TestChainImportsOnlyTheChain(t *testing.T) {
	for _, f := range parseRepo(t) {
		if !matches("internal/chain/...", f.dir) {
			continue
		}
		for _, ip := range f.imports {
			pkg, ours := strings.CutPrefix(ip, module)
			if ours && !matches("internal/chain/...", pkg) && !matches("internal/address", pkg) {
				t.Errorf("%s imports %s: the chain depends on no service", f.path, ip)
			}
		}
	}
}
