package config

import (
	"path"
	"sort"
	"strings"
)

// BaseEnv is what every program expects to find: the host gets these from
// the application's environment whatever the env setting says.
var BaseEnv = []string{
	"PATH", "HOME", "TMPDIR", "LANG", "LANGUAGE", "LC_*", "TZ", "USER", "LOGNAME",
	// Vendor modules often find their own shared libraries through it.
	"LD_LIBRARY_PATH",
}

// VendorEnv names the variables well-known PKCS#11 modules read their
// configuration from. README.md ("Isolation") lists the same; keep them
// together. FAULTMOD_* of our own tests is not here: the tests pass it
// with env.
var VendorEnv = []string{
	// SoftHSM2
	"SOFTHSM2_CONF",
	// OpenSC (opensc-pkcs11.so), and pcsc-lite under smart-card modules
	"OPENSC_CONF", "OPENSC_DEBUG", "OPENSC_DRIVER", "PCSCLITE_*",
	// p11-kit's proxy and client modules; their user configuration, cache
	// and the client's default server socket
	"P11_KIT_*", "XDG_CONFIG_HOME", "XDG_CACHE_HOME", "XDG_RUNTIME_DIR",
	// pkcs11-proxy's client
	"PKCS11_PROXY_SOCKET",
	// Thales Luna (Chrystoki.conf)
	"ChrystokiConfigurationPath",
	// Thales ProtectServer / ProtectToolkit-C configuration items
	"ET_PTKC_*", "ET_HSM_*",
	// Entrust nShield (NFAST_HOME, NFAST_KMDATA, ... and CKNFAST_* options)
	"NFAST_*", "CKNFAST_*",
	// Utimaco CryptoServer
	"CS_PKCS11_R2_CFG", "CS_PKCS11_R3_CFG",
	// YubiHSM 2
	"YUBIHSM_PKCS11_CONF",
	// Google Cloud KMS (libkmsp11) and its credentials file
	"KMS_PKCS11_CONFIG", "GOOGLE_APPLICATION_CREDENTIALS",
	// openCryptoki (not PKCS11_USER_PIN, a PIN for its tools)
	"OPENCRYPTOKI_TRACE_LEVEL", "OCK_*", "PKCS11_SHMEM_FILE", "PKCS_APP_STORE",
	// tpm2-pkcs11 and its TSS
	"TPM2_PKCS11_*", "TSS2_*",
	// TLS trust stores of network HSM clients (OpenSSL, gRPC)
	"SSL_CERT_FILE", "SSL_CERT_DIR", "GRPC_DEFAULT_SSL_ROOTS_FILE_PATH",
	// cloud HSM clients behind a web proxy
	"HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "NO_PROXY", "no_proxy",
}

// FilterEnv returns the part of environ (NAME=value strings) the host gets:
// BaseEnv, VendorEnv and the patterns of the env setting; "*" passes
// everything. P11ISOLATE_* never passes. withheld lists the names left out.
func FilterEnv(environ, extra []string) (given []string, names []string, withheld []string) {
	seen := map[string]bool{}
	for _, kv := range environ {
		name, _, _ := strings.Cut(kv, "=")
		if seen[name] {
			continue // C's getenv sees the first
		}
		seen[name] = true
		if strings.HasPrefix(name, "P11ISOLATE_") || name == "" {
			continue
		}
		if matchAny(name, BaseEnv) || matchAny(name, VendorEnv) || matchAny(name, extra) {
			given = append(given, kv)
			names = append(names, name)
		} else {
			withheld = append(withheld, name)
		}
	}
	sort.Strings(names)
	sort.Strings(withheld)
	return given, names, withheld
}

func matchAny(name string, patterns []string) bool {
	for _, p := range patterns {
		if p == name {
			return true
		}
		if ok, _ := path.Match(p, name); ok {
			return true
		}
	}
	return false
}
