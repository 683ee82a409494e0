package config

import (
	"fmt"
	"strings"
)

// commands says which command reads each service's file.
var commands = map[Service]string{
	Node:        "aitbc node start",
	Coordinator: "aitbc coordinator start",
	Wallet:      "aitbc wallet daemon",
	Miner:       "aitbc miner start",
	Web:         "aitbc web start",
	Devnet:      "aitbc devnet",
}

// Command is the command that reads svc's file with --config.
func Command(svc Service) string { return commands[svc] }

// Template is svc's configuration file with every key commented out at
// its default, each under its description: what `aitbc config init`
// writes. Uncommenting a line and editing it is all an operator does.
func Template(svc Service) (string, error) {
	l, err := Default(svc)
	if err != nil {
		return "", err
	}
	var b strings.Builder
	fmt.Fprintf(&b, "# AITBC %s configuration, read by `%s --config FILE`.\n", svc, Command(svc))
	b.WriteString("# Every key is shown at its default, commented out: uncomment a line to change it.\n")
	b.WriteString("# Precedence: command-line flags, then AITBC_* variables, then this file, then defaults.\n")
	b.WriteString("# Unknown keys are an error. docs/CONFIG.md describes every key.\n")
	section := ""
	for _, k := range Keys(l.Value) {
		sec, name := "", k.Path
		if i := strings.LastIndexByte(k.Path, '.'); i >= 0 {
			sec, name = k.Path[:i], k.Path[i+1:]
		}
		if sec != section {
			fmt.Fprintf(&b, "\n[%s]\n", sec)
			section = sec
		}
		fmt.Fprintf(&b, "\n# %s", k.Doc)
		if k.Flag != "" {
			fmt.Fprintf(&b, " (flag --%s, env %s)", k.Flag, k.Env)
		} else {
			fmt.Fprintf(&b, " (env %s)", k.Env)
		}
		fmt.Fprintf(&b, "\n#%s = %s\n", name, k.TOML())
	}
	return b.String(), nil
}

// Markdown documents every key of every service: its default, the flag
// and variable that override it, and what it does. docs/CONFIG.md holds
// it between generated markers; a test keeps the two equal.
func Markdown() string {
	var b strings.Builder
	for _, svc := range Services() {
		l, _ := Default(svc)
		fmt.Fprintf(&b, "### %s\n\nRead by `%s --config FILE`; `aitbc config init --service %s` writes this file commented.\n\n", svc, Command(svc), svc)
		b.WriteString("| key | default | flag | environment | description |\n|---|---|---|---|---|\n")
		for _, k := range Keys(l.Value) {
			flag := ""
			if k.Flag != "" {
				flag = "`--" + k.Flag + "`"
			}
			def := "`" + k.TOML() + "`"
			if k.Secret {
				def += " (secret)"
			}
			fmt.Fprintf(&b, "| `%s` | %s | %s | `%s` | %s |\n", k.Path, def, flag, k.Env, strings.ReplaceAll(k.Doc, "|", "\\|"))
		}
		b.WriteString("\n")
	}
	return b.String()
}
