package walletd

import (
	"os"
	"strings"
	"time"

	"github.com/aitbc/aitbc/internal/keystore"
)

// DefaultPasswordGrace is how long the wallet daemon of `aitbc wallet
// daemon` and `aitbc devnet` keeps a wallet unlocked after its password was
// given to create it or to sign with it, as sudo and gpg-agent remember a
// passphrase for a while: the seeds give the password to create and send,
// then sign marketplace and job transactions without it. A Service has no
// grace unless configured (ServiceConfig.PasswordGrace, SetPasswordGrace);
// Unlock's explicit sessions are unaffected by it.
const DefaultPasswordGrace = 5 * time.Minute

// EnvPasswordGrace overrides the daemons' grace: a duration ("2m"), or
// "0"/"off" to turn it off.
const EnvPasswordGrace = "AITBC_WALLET_PASSWORD_GRACE"

// PasswordGraceFromEnv is EnvPasswordGrace's duration, or def when it is
// unset or unreadable.
func PasswordGraceFromEnv(def time.Duration) time.Duration {
	switch v := strings.TrimSpace(os.Getenv(EnvPasswordGrace)); v {
	case "":
		return def
	case "0", "off", "false", "no":
		return 0
	default:
		if d, err := time.ParseDuration(v); err == nil && d >= 0 {
			return d
		}
		return def
	}
}

// SetPasswordGrace sets how long a password given to create a wallet or
// sign with it keeps the wallet unlocked (0 or less: not at all; at most
// MaxUnlockTimeout).
func (s *Service) SetPasswordGrace(d time.Duration) {
	s.mu.Lock()
	s.grace = min(max(d, 0), MaxUnlockTimeout)
	s.mu.Unlock()
}

func (s *Service) passwordGrace() time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.grace
}

// rememberPassword keeps wallet name unlocked for the grace period after
// its password was just given (wallet creation, which holds no key yet:
// it decrypts the new wallet once more).
func (s *Service) rememberPassword(name, password string) {
	if s.passwordGrace() <= 0 || password == "" {
		return
	}
	k, err := s.ks.Unlock(name, password)
	if err != nil {
		return
	}
	defer k.Wipe()
	s.remember(name, k)
}

// remember keeps a copy of k, just decrypted with its password, unlocked
// for the grace period, unless a live session (an explicit unlock, or an
// earlier grace) already holds the wallet: that one keeps its own expiry.
func (s *Service) remember(name string, k *keystore.Key) {
	grace := s.passwordGrace()
	if grace <= 0 {
		return
	}
	c, err := k.Clone()
	if err != nil {
		return
	}
	now := s.now()
	s.mu.Lock()
	old := s.sessions[name]
	if old != nil && !old.key.Wiped() && now.Before(old.until) {
		s.mu.Unlock()
		c.Wipe()
		return
	}
	ss := &session{key: c, until: now.Add(grace)}
	s.sessions[name] = ss
	ss.timer = time.AfterFunc(grace, func() { s.expire(name, ss, 0) })
	s.mu.Unlock()
	if old != nil { // expired, not yet swept
		old.timer.Stop()
		old.key.Wipe()
	}
	s.log.Info("wallet unlocked for the password grace", "wallet", name, "until", ss.until.Format(time.RFC3339))
}
