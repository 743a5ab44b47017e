/* p11isolate-vet-driver LIB: vets a PKCS#11 module through libp11isolate.so.
 *
 * `p11isolate vet MODULE` runs it with the library's settings in the
 * environment (P11ISOLATE_MODULE = the module under review, P11ISOLATE_LOG =
 * a fresh log file, P11ISOLATE_TIMEOUT, P11ISOLATE_ENV). The driver loads
 * LIB with dlopen and uses only LIB's function list: the module under review
 * runs only in the sandboxed host, so whatever it does to itself cannot take
 * the driver down. What happened inside a call (a crash, a hang, a reply that
 * cannot be true, a return code no PKCS#11 version defines) is read from the
 * lines the library appends to its log during that call.
 *
 * Sections: inventory (what the module says it is and has), conformance
 * (rules of PKCS#11 2.40 checked one by one), robustness (every function
 * with malformed but well-shaped arguments), leaks (the host's memory, fds
 * and threads across many calls), cost (latency through the proxy).
 *
 * Output: ONE JSON object on stdout, nothing else there; progress and
 * diagnostics go to stderr. A PIN is never printed anywhere.
 *
 * Environment: VET_PIN, VET_SO_PIN, VET_SLOT, VET_INIT_TOKEN=1,
 * VET_LEAK_CALLS (default 10000), VET_SKIP (comma list of sections).
 *
 * Keys the driver needs are session objects (CKA_TOKEN false) generated in
 * its own sessions, so nothing stays on the token.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "pkcs11_3x.h"

static CK_FUNCTION_LIST_PTR F;

#define UNAVAIL CK_UNAVAILABLE_INFORMATION
#define MECH_UNKNOWN ((CK_MECHANISM_TYPE)0x7fffff00)
#define ATTR_UNKNOWN ((CK_ATTRIBUTE_TYPE)0x7fff0001)
#define SKIPPED ((CK_RV)~(CK_RV)0) /* a robustness call that was not made */

/* ================================================================== */
/* Small utilities                                                     */

static void oom(void)
{
	fputs("p11isolate-vet-driver: out of memory\n", stderr);
	exit(2);
}

static void *xcalloc(size_t n, size_t size)
{
	void *p = calloc(n ? n : 1, size ? size : 1);
	if (p == NULL)
		oom();
	return p;
}

/* xfmt formats into a new string; the driver is short-lived, so the
 * strings that end up in the report are never freed. */
__attribute__((format(printf, 1, 2))) static char *xfmt(const char *fmt, ...)
{
	va_list ap;
	char *s;

	va_start(ap, fmt);
	if (vasprintf(&s, fmt, ap) < 0)
		oom();
	va_end(ap);
	return s;
}

static double mono_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static void progress(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void progress(const char *fmt, ...)
{
	va_list ap;

	fputs("vet: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

/* ckr names a return value for the report's "got" texts. */
static const char *ckr(CK_RV rv)
{
	static const struct {
		CK_RV rv;
		const char *name;
	} names[] = {
#define N(x) { x, #x },
		N(CKR_OK) N(CKR_CANCEL) N(CKR_HOST_MEMORY) N(CKR_SLOT_ID_INVALID) N(CKR_GENERAL_ERROR)
		N(CKR_FUNCTION_FAILED) N(CKR_ARGUMENTS_BAD) N(CKR_NO_EVENT) N(CKR_NEED_TO_CREATE_THREADS)
		N(CKR_CANT_LOCK) N(CKR_ATTRIBUTE_READ_ONLY) N(CKR_ATTRIBUTE_SENSITIVE) N(CKR_ATTRIBUTE_TYPE_INVALID)
		N(CKR_ATTRIBUTE_VALUE_INVALID) N(CKR_ACTION_PROHIBITED) N(CKR_DATA_INVALID) N(CKR_DATA_LEN_RANGE)
		N(CKR_DEVICE_ERROR) N(CKR_DEVICE_MEMORY) N(CKR_DEVICE_REMOVED) N(CKR_ENCRYPTED_DATA_INVALID)
		N(CKR_ENCRYPTED_DATA_LEN_RANGE) N(CKR_FUNCTION_CANCELED) N(CKR_FUNCTION_NOT_PARALLEL)
		N(CKR_FUNCTION_NOT_SUPPORTED) N(CKR_KEY_HANDLE_INVALID) N(CKR_KEY_SIZE_RANGE)
		N(CKR_KEY_TYPE_INCONSISTENT) N(CKR_KEY_NOT_NEEDED) N(CKR_KEY_CHANGED) N(CKR_KEY_NEEDED)
		N(CKR_KEY_INDIGESTIBLE) N(CKR_KEY_FUNCTION_NOT_PERMITTED) N(CKR_KEY_NOT_WRAPPABLE)
		N(CKR_KEY_UNEXTRACTABLE) N(CKR_MECHANISM_INVALID) N(CKR_MECHANISM_PARAM_INVALID)
		N(CKR_OBJECT_HANDLE_INVALID) N(CKR_OPERATION_ACTIVE) N(CKR_OPERATION_NOT_INITIALIZED)
		N(CKR_PIN_INCORRECT) N(CKR_PIN_INVALID) N(CKR_PIN_LEN_RANGE) N(CKR_PIN_EXPIRED) N(CKR_PIN_LOCKED)
		N(CKR_SESSION_CLOSED) N(CKR_SESSION_COUNT) N(CKR_SESSION_HANDLE_INVALID)
		N(CKR_SESSION_PARALLEL_NOT_SUPPORTED) N(CKR_SESSION_READ_ONLY) N(CKR_SESSION_EXISTS)
		N(CKR_SESSION_READ_ONLY_EXISTS) N(CKR_SESSION_READ_WRITE_SO_EXISTS) N(CKR_SIGNATURE_INVALID)
		N(CKR_SIGNATURE_LEN_RANGE) N(CKR_TEMPLATE_INCOMPLETE) N(CKR_TEMPLATE_INCONSISTENT)
		N(CKR_TOKEN_NOT_PRESENT) N(CKR_TOKEN_NOT_RECOGNIZED) N(CKR_TOKEN_WRITE_PROTECTED)
		N(CKR_UNWRAPPING_KEY_HANDLE_INVALID) N(CKR_UNWRAPPING_KEY_SIZE_RANGE)
		N(CKR_UNWRAPPING_KEY_TYPE_INCONSISTENT) N(CKR_USER_ALREADY_LOGGED_IN) N(CKR_USER_NOT_LOGGED_IN)
		N(CKR_USER_PIN_NOT_INITIALIZED) N(CKR_USER_TYPE_INVALID) N(CKR_USER_ANOTHER_ALREADY_LOGGED_IN)
		N(CKR_USER_TOO_MANY_TYPES) N(CKR_WRAPPED_KEY_INVALID) N(CKR_WRAPPED_KEY_LEN_RANGE)
		N(CKR_WRAPPING_KEY_HANDLE_INVALID) N(CKR_WRAPPING_KEY_SIZE_RANGE)
		N(CKR_WRAPPING_KEY_TYPE_INCONSISTENT) N(CKR_RANDOM_SEED_NOT_SUPPORTED) N(CKR_RANDOM_NO_RNG)
		N(CKR_DOMAIN_PARAMS_INVALID) N(CKR_CURVE_NOT_SUPPORTED) N(CKR_BUFFER_TOO_SMALL)
		N(CKR_SAVED_STATE_INVALID) N(CKR_INFORMATION_SENSITIVE) N(CKR_STATE_UNSAVEABLE)
		N(CKR_CRYPTOKI_NOT_INITIALIZED) N(CKR_CRYPTOKI_ALREADY_INITIALIZED) N(CKR_MUTEX_BAD)
		N(CKR_MUTEX_NOT_LOCKED) N(CKR_FUNCTION_REJECTED)
#undef N
	};
	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
		if (names[i].rv == rv)
			return names[i].name;
	return xfmt("0x%lx", (unsigned long)rv);
}

/* lenstr shows an output length, CK_UNAVAILABLE_INFORMATION by name. */
static const char *lenstr(CK_ULONG n)
{
	return n == UNAVAIL ? "CK_UNAVAILABLE_INFORMATION" : xfmt("%lu", (unsigned long)n);
}

/* parse_duration reads a Go duration ("5s", "500ms", "1m30s") in seconds;
 * -1 when it is not one. */
static double parse_duration(const char *s)
{
	static const struct {
		const char *unit;
		double sec;
	} units[] = { { "ns", 1e-9 }, { "us", 1e-6 }, { "µs", 1e-6 }, { "ms", 1e-3 },
		      { "s", 1 },     { "m", 60 },    { "h", 3600 } };
	double total = 0;

	if (strcmp(s, "0") == 0)
		return 0;
	while (*s != '\0') {
		char *end;
		double v = strtod(s, &end);
		size_t best = 0;
		int u = -1;
		if (end == s)
			return -1;
		for (int i = 0; i < (int)(sizeof units / sizeof units[0]); i++) {
			size_t l = strlen(units[i].unit);
			if (strncmp(end, units[i].unit, l) == 0 && l > best) {
				best = l;
				u = i;
			}
		}
		if (u < 0)
			return -1;
		total += v * units[u].sec;
		s = end + best;
	}
	return total;
}

/* ================================================================== */
/* JSON                                                                */

struct sb {
	char *p;
	size_t n, cap;
};

static void sb_add(struct sb *b, const char *s, size_t n)
{
	if (b->n + n + 1 > b->cap) {
		size_t c = b->cap ? b->cap : 1024;
		while (c < b->n + n + 1)
			c *= 2;
		char *q = realloc(b->p, c);
		if (q == NULL)
			oom();
		b->p = q;
		b->cap = c;
	}
	memcpy(b->p + b->n, s, n);
	b->n += n;
	b->p[b->n] = '\0';
}

static void sb_puts(struct sb *b, const char *s) { sb_add(b, s, strlen(s)); }

/* utf8_len is the length of the valid UTF-8 sequence at s (of n bytes),
 * 0 when it is not one. */
static size_t utf8_len(const unsigned char *s, size_t n)
{
	size_t len;
	unsigned min;
	unsigned cp;

	if (s[0] < 0x80)
		return 1;
	if ((s[0] & 0xe0) == 0xc0)
		len = 2, min = 0x80, cp = s[0] & 0x1f;
	else if ((s[0] & 0xf0) == 0xe0)
		len = 3, min = 0x800, cp = s[0] & 0x0f;
	else if ((s[0] & 0xf8) == 0xf0)
		len = 4, min = 0x10000, cp = s[0] & 0x07;
	else
		return 0;
	if (len > n)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (s[i] & 0x3f);
	}
	if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return len;
}

/* sb_json writes n bytes of s as a JSON string; bytes that are not UTF-8
 * (a vendor's padded fields may hold anything) become U+FFFD. */
static void sb_json(struct sb *b, const char *s, size_t n)
{
	const unsigned char *u = (const unsigned char *)s;
	char esc[8];

	sb_add(b, "\"", 1);
	for (size_t i = 0; i < n;) {
		size_t l = utf8_len(u + i, n - i);
		if (l == 0) {
			sb_puts(b, "\\ufffd");
			i++;
			continue;
		}
		if (l > 1) {
			sb_add(b, s + i, l);
		} else if (u[i] == '"' || u[i] == '\\') {
			esc[0] = '\\';
			esc[1] = (char)u[i];
			sb_add(b, esc, 2);
		} else if (u[i] == '\n') {
			sb_puts(b, "\\n");
		} else if (u[i] == '\t') {
			sb_puts(b, "\\t");
		} else if (u[i] < 0x20 || u[i] == 0x7f) {
			snprintf(esc, sizeof esc, "\\u%04x", u[i]);
			sb_puts(b, esc);
		} else {
			sb_add(b, s + i, 1);
		}
		i += l;
	}
	sb_add(b, "\"", 1);
}

/* A JSON writer: it puts the commas in, so callers just say what comes. */
struct js {
	struct sb b;
	int depth;
	unsigned char first[32];
};

static void js_sep(struct js *j)
{
	if (j->depth > 0 && !j->first[j->depth])
		sb_add(&j->b, ",", 1);
	j->first[j->depth] = 0;
}

static void js_open(struct js *j, const char *c)
{
	js_sep(j);
	sb_puts(&j->b, c);
	j->first[++j->depth] = 1;
}

static void js_close(struct js *j, const char *c)
{
	j->depth--;
	sb_puts(&j->b, c);
}

static void js_key(struct js *j, const char *k)
{
	js_sep(j);
	sb_json(&j->b, k, strlen(k));
	sb_add(&j->b, ":", 1);
	j->first[j->depth] = 1; /* the value that follows takes no comma */
}

static void js_raw(struct js *j, const char *s)
{
	js_sep(j);
	sb_puts(&j->b, s);
}

static void js_int(struct js *j, long long v)
{
	char t[32];
	snprintf(t, sizeof t, "%lld", v);
	js_raw(j, t);
}

/* js_ulong writes a CK_ULONG; CK_UNAVAILABLE_INFORMATION as -1. */
static void js_ulong(struct js *j, CK_ULONG v)
{
	char t[32];
	if (v == UNAVAIL)
		snprintf(t, sizeof t, "-1");
	else
		snprintf(t, sizeof t, "%lu", (unsigned long)v);
	js_raw(j, t);
}

static void js_num(struct js *j, double v)
{
	char t[48];
	snprintf(t, sizeof t, "%.1f", v);
	js_raw(j, t);
}

static void js_str(struct js *j, const char *s)
{
	js_sep(j);
	if (s == NULL)
		sb_puts(&j->b, "null");
	else
		sb_json(&j->b, s, strlen(s));
}

/* js_pad writes a blank-padded PKCS#11 text field without its padding (and
 * without anything after a NUL, which some vendors put there). */
static void js_pad(struct js *j, const CK_UTF8CHAR *s, size_t n)
{
	const char *c = (const char *)s;
	const char *nul = memchr(c, '\0', n);
	if (nul != NULL)
		n = (size_t)(nul - c);
	while (n > 0 && c[n - 1] == ' ')
		n--;
	js_sep(j);
	sb_json(&j->b, c, n);
}

static void js_version(struct js *j, CK_VERSION v)
{
	js_open(j, "[");
	js_int(j, v.major);
	js_int(j, v.minor);
	js_close(j, "]");
}

/* ================================================================== */
/* Options, errors                                                     */

enum { SEC_INVENTORY, SEC_CONFORMANCE, SEC_ROBUSTNESS, SEC_LEAKS, SEC_COST, SEC_N };
static const char *const sec_names[SEC_N] = { "inventory", "conformance", "robustness", "leaks", "cost" };

static struct {
	const char *pin, *so_pin;
	int slot_given;
	CK_SLOT_ID slot;
	int init_token;
	long leak_calls;
	int skip[SEC_N];
	double deadline; /* the proxy's per-call deadline in seconds; 0: none */
} O;

/* The report's "errors": one line per thing the driver could not do. */
static struct {
	char **v;
	int n;
} E;

__attribute__((format(printf, 1, 2))) static void err(const char *fmt, ...)
{
	va_list ap;
	char *s;

	va_start(ap, fmt);
	if (vasprintf(&s, fmt, ap) < 0)
		oom();
	va_end(ap);
	for (int i = 0; i < E.n; i++)
		if (strcmp(E.v[i], s) == 0) {
			free(s);
			return;
		}
	E.v = realloc(E.v, (size_t)(E.n + 1) * sizeof *E.v);
	if (E.v == NULL)
		oom();
	E.v[E.n++] = s;
	progress("%s", s);
}

static void read_options(void)
{
	const char *v;

	O.pin = getenv("VET_PIN");
	O.so_pin = getenv("VET_SO_PIN");
	if (O.pin != NULL && *O.pin == '\0')
		O.pin = NULL;
	if (O.so_pin != NULL && *O.so_pin == '\0')
		O.so_pin = NULL;
	if ((v = getenv("VET_SLOT")) != NULL && *v != '\0') {
		char *end;
		errno = 0;
		unsigned long long s = strtoull(v, &end, 0);
		if (errno != 0 || *end != '\0')
			err("VET_SLOT=%s is not a slot ID: choosing the slot myself", v);
		else {
			O.slot_given = 1;
			O.slot = (CK_SLOT_ID)s;
		}
	}
	O.init_token = (v = getenv("VET_INIT_TOKEN")) != NULL && strcmp(v, "1") == 0;
	O.leak_calls = 10000;
	if ((v = getenv("VET_LEAK_CALLS")) != NULL && *v != '\0') {
		char *end;
		long n = strtol(v, &end, 10);
		if (*end != '\0' || n <= 0)
			err("VET_LEAK_CALLS=%s is not a positive number: using 10000", v);
		else
			O.leak_calls = n;
	}
	if ((v = getenv("VET_SKIP")) != NULL) {
		char *list = strdup(v), *save = NULL;
		if (list == NULL)
			oom();
		for (char *w = strtok_r(list, ", ", &save); w != NULL; w = strtok_r(NULL, ", ", &save)) {
			int found = 0;
			for (int i = 0; i < SEC_N; i++)
				if (strcmp(w, sec_names[i]) == 0)
					O.skip[i] = found = 1;
			if (!found)
				err("VET_SKIP names \"%s\", which is no section (inventory, conformance, robustness, leaks, cost)", w);
		}
		free(list);
	}
	O.deadline = 30; /* the library's default */
	if ((v = getenv("P11ISOLATE_TIMEOUT")) != NULL && *v != '\0') {
		double d = parse_duration(v);
		if (d >= 0)
			O.deadline = d;
	}
	if (O.deadline == 0)
		err("P11ISOLATE_TIMEOUT=0: calls have no deadline, so a module that hangs hangs the vet");
}

/* ================================================================== */
/* The library's log                                                   */

/* The library appends a line for every crash, hang, lie and undefined
 * code it sees; what a call did is read from the bytes appended while it
 * ran. All of those lines are written by the calling thread before the
 * call returns, so reading right after the call sees them. */
static int log_fd = -1;

static off_t log_size(void)
{
	struct stat st;
	if (log_fd < 0 || fstat(log_fd, &st) != 0)
		return 0;
	return st.st_size;
}

/* log_since returns the bytes appended since off, NUL-terminated. */
static char *log_since(off_t off)
{
	off_t end = log_size();
	size_t n = end > off ? (size_t)(end - off) : 0;
	char *s = xcalloc(n + 1, 1);
	size_t got = 0;

	while (got < n) {
		ssize_t r = pread(log_fd, s + got, n - got, off + (off_t)got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		got += (size_t)r;
	}
	s[got] = '\0';
	return s;
}

/* open_log opens the library's log file for reading, setting one up when
 * the environment names none (lines on stderr could not be told apart
 * from the driver's). Before dlopen: the library reads its settings then. */
static void open_log(void)
{
	const char *path = getenv("P11ISOLATE_LOG");

	if (path == NULL || *path == '\0' || strcmp(path, "stderr") == 0) {
		static char tmp[] = "/tmp/p11isolate-vet-XXXXXX.log";
		int fd = mkstemps(tmp, 4);
		if (fd < 0) {
			err("P11ISOLATE_LOG is not set and no log file can be made (%s): outcomes cannot be told apart",
			    strerror(errno));
			return;
		}
		close(fd);
		setenv("P11ISOLATE_LOG", tmp, 1);
		path = tmp;
		progress("P11ISOLATE_LOG was not set: the library logs to %s", tmp);
	}
	log_fd = open(path, O_RDONLY | O_CREAT | O_CLOEXEC, 0600);
	if (log_fd < 0)
		err("cannot read the log %s (%s): outcomes cannot be told apart", path, strerror(errno));
}

enum outcome { O_OK, O_CRASH, O_HANG, O_LIE, O_UNDEF, O_NOUT };
static const char *const outcome_names[O_NOUT] = { "ok", "crash", "hang", "lie", "undefined" };

struct incident {
	enum outcome o;
	char line[1024]; /* the log line that says so */
	int start_failed; /* a new host could not be started */
};

/* line_outcome classifies one line of the library's own (not a host's). */
static enum outcome line_outcome(const char *l, int *start_failed)
{
	if (strstr(l, " passed its deadline: killing the host") != NULL)
		return O_HANG;
	if (strstr(l, "did not start within the deadline") != NULL ||
	    strstr(l, "did not finish within the deadline") != NULL) {
		*start_failed = 1;
		return O_HANG;
	}
	if (strncmp(l, "the host (pid ", 14) == 0 && strstr(l, " died during ") != NULL)
		return O_CRASH;
	if (strncmp(l, "the host died loading ", 22) == 0 || strncmp(l, "the host did not start (", 24) == 0) {
		*start_failed = 1;
		return O_CRASH;
	}
	if (strstr(l, ": the reply of ") != NULL && strstr(l, " cannot be true: ") != NULL)
		return O_LIE;
	if (strstr(l, ", a code no PKCS#11 version defines") != NULL)
		return O_UNDEF;
	if (strstr(l, "failed again; the next attempt waits") != NULL)
		*start_failed = 1;
	return O_OK;
}

/* classify reads what the library logged since off: the first line that
 * tells of a crash, hang, lie or undefined code decides. Lines relayed from
 * a host's stderr ("host[PID]: ...") and a forked child's lines
 * ("p11isolate[PID]: ...") are not about this process's call. */
static void classify(off_t off, struct incident *in)
{
	static const char me[] = "p11isolate: ";
	char *text = log_since(off), *save = NULL;

	memset(in, 0, sizeof *in);
	for (char *l = strtok_r(text, "\n", &save); l != NULL; l = strtok_r(NULL, "\n", &save)) {
		if (strncmp(l, me, sizeof me - 1) != 0 || strncmp(l + sizeof me - 1, "host[", 5) == 0)
			continue;
		enum outcome o = line_outcome(l + sizeof me - 1, &in->start_failed);
		if (o != O_OK && in->o == O_OK) {
			in->o = o;
			snprintf(in->line, sizeof in->line, "%s", l);
		}
	}
	free(text);
}

/* ================================================================== */
/* The module, the slot, the driver's own state                        */

static CK_C_INITIALIZE_ARGS os_locking = { .flags = CKF_OS_LOCKING_OK };

/* What the driver needs to know of the slot it vets. */
static struct {
	int have;
	CK_SLOT_ID id;
	CK_TOKEN_INFO token;
	CK_MECHANISM_TYPE *mechs;
	CK_ULONG nmechs;
} V;

static int has_mech(CK_MECHANISM_TYPE m)
{
	for (CK_ULONG i = 0; i < V.nmechs; i++)
		if (V.mechs[i] == m)
			return 1;
	return 0;
}

static int can_sign(void) { return O.pin != NULL && has_mech(CKM_EC_KEY_PAIR_GEN) && has_mech(CKM_ECDSA); }

/* The driver's sessions and keys. hk holds the keys (session objects die
 * with the session that made them, so it stays open); hw is the session
 * the checks work in, reopened to drop whatever operation a call left
 * active; closed is the handle of a session that was opened and closed.
 * After the host died all of them are gone with it: up is cleared and the
 * next use makes them again. */
static struct {
	int up, broken;
	CK_SESSION_HANDLE hk, hw, closed;
	CK_OBJECT_HANDLE pub, priv, aes;
	CK_OBJECT_HANDLE data; /* without keys: a public data object */
} S;

/* P-256's OID, the CKA_EC_PARAMS of the driver's EC keys. */
static CK_BYTE p256[] = { 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07 };

static CK_BBOOL yes = CK_TRUE, no = CK_FALSE;

static CK_RV gen_ec(CK_SESSION_HANDLE h, CK_OBJECT_HANDLE *pub, CK_OBJECT_HANDLE *priv)
{
	CK_MECHANISM m = { CKM_EC_KEY_PAIR_GEN, NULL, 0 };
	CK_ATTRIBUTE pubt[] = {
		{ CKA_TOKEN, &no, 1 },
		{ CKA_EC_PARAMS, p256, sizeof p256 },
		{ CKA_VERIFY, &yes, 1 },
	};
	CK_ATTRIBUTE privt[] = {
		{ CKA_TOKEN, &no, 1 },	   { CKA_PRIVATE, &yes, 1 },     { CKA_SIGN, &yes, 1 },
		{ CKA_SENSITIVE, &yes, 1 }, { CKA_EXTRACTABLE, &no, 1 },
	};
	return F->C_GenerateKeyPair(h, &m, pubt, 3, privt, 5, pub, priv);
}

static CK_RV gen_aes(CK_SESSION_HANDLE h, CK_OBJECT_HANDLE *key)
{
	CK_MECHANISM m = { CKM_AES_KEY_GEN, NULL, 0 };
	CK_ULONG len = 32;
	CK_ATTRIBUTE t[] = {
		{ CKA_TOKEN, &no, 1 },	   { CKA_VALUE_LEN, &len, sizeof len }, { CKA_ENCRYPT, &yes, 1 },
		{ CKA_DECRYPT, &yes, 1 },   { CKA_WRAP, &yes, 1 },		 { CKA_UNWRAP, &yes, 1 },
		{ CKA_SENSITIVE, &yes, 1 }, { CKA_EXTRACTABLE, &no, 1 },
	};
	return F->C_GenerateKey(h, &m, t, 8, key);
}

static CK_RV make_data(CK_SESSION_HANDLE h, CK_OBJECT_HANDLE *obj)
{
	static CK_OBJECT_CLASS data = CKO_DATA;
	static CK_UTF8CHAR label[] = "p11isolate-vet";
	static CK_BYTE value[] = "vet";
	CK_ATTRIBUTE t[] = {
		{ CKA_CLASS, &data, sizeof data },	    { CKA_TOKEN, &no, 1 },	      { CKA_PRIVATE, &no, 1 },
		{ CKA_LABEL, label, sizeof label - 1 }, { CKA_VALUE, value, sizeof value - 1 },
	};
	return F->C_CreateObject(h, t, 5, obj);
}

static CK_RV open_rw(CK_SESSION_HANDLE *h)
{
	return F->C_OpenSession(V.id, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, h);
}

static CK_RV login(CK_SESSION_HANDLE h)
{
	CK_RV rv = F->C_Login(h, CKU_USER, (CK_UTF8CHAR_PTR)O.pin, strlen(O.pin));
	return rv == CKR_USER_ALREADY_LOGGED_IN ? CKR_OK : rv;
}

/* state_drop closes what is left of the driver's sessions: their keys go
 * with them. After a host died the handles are stale, and closing them
 * only gets CKR_SESSION_HANDLE_INVALID (the proxy never lets an old
 * host's handle name an object of the new one). */
static void state_drop(void)
{
	if (S.hw != 0)
		F->C_CloseSession(S.hw);
	if (S.hk != 0)
		F->C_CloseSession(S.hk);
	memset(&S, 0, sizeof S);
}

/* state_try makes the sessions and keys once: 0, 1 when the host died
 * meanwhile (worth another try), -1 when the module refuses. */
static int state_try(void)
{
	CK_RV rv;

	state_drop();
	if ((rv = open_rw(&S.hk)) != CKR_OK)
		goto refused;
	if (O.pin != NULL && (rv = login(S.hk)) != CKR_OK)
		goto refused;
	if (can_sign() && (rv = gen_ec(S.hk, &S.pub, &S.priv)) != CKR_OK) {
		if (rv == CKR_DEVICE_ERROR)
			return 1;
		err("C_GenerateKeyPair(CKM_EC_KEY_PAIR_GEN, P-256 session key pair): %s: checks that sign are skipped", ckr(rv));
		S.pub = S.priv = 0;
	}
	if (O.pin != NULL && has_mech(CKM_AES_KEY_GEN) && (rv = gen_aes(S.hk, &S.aes)) != CKR_OK) {
		if (rv == CKR_DEVICE_ERROR)
			return 1;
		err("C_GenerateKey(CKM_AES_KEY_GEN, AES-256 session key): %s", ckr(rv));
		S.aes = 0;
	}
	/* Without a key the object calls still need an object the module
	 * made: a public one needs no login. */
	if (S.aes == 0 && S.pub == 0 && (rv = make_data(S.hk, &S.data)) != CKR_OK) {
		if (rv == CKR_DEVICE_ERROR)
			return 1;
		err("C_CreateObject(a public session data object): %s: object calls use handle 0", ckr(rv));
		S.data = 0;
	}
	if ((rv = open_rw(&S.closed)) != CKR_OK || (rv = F->C_CloseSession(S.closed)) != CKR_OK)
		goto refused;
	if ((rv = open_rw(&S.hw)) != CKR_OK)
		goto refused;
	return 0;
refused:
	if (rv == CKR_DEVICE_ERROR)
		return 1;
	err("setting up the driver's sessions on slot %lu: %s", (unsigned long)V.id, ckr(rv));
	return -1;
}

static int hangs; /* hangs seen in all (robustness stops after 5) */

/* resolve_slot finds the vetted token again after a new host started:
 * some modules number their slots anew when they start (SoftHSM2 moves a
 * token it initialized to a slot ID derived from its serial), so the slot
 * is followed by the token's label and serial number. */
static void resolve_slot(void)
{
	CK_SLOT_ID list[64];
	CK_ULONG n = 64;
	CK_TOKEN_INFO ti;

	if (F->C_GetTokenInfo(V.id, &ti) == CKR_OK && memcmp(ti.label, V.token.label, sizeof ti.label) == 0 &&
	    memcmp(ti.serialNumber, V.token.serialNumber, sizeof ti.serialNumber) == 0)
		return;
	if (F->C_GetSlotList(CK_TRUE, list, &n) != CKR_OK)
		return;
	for (CK_ULONG i = 0; i < n; i++)
		if (F->C_GetTokenInfo(list[i], &ti) == CKR_OK && memcmp(ti.label, V.token.label, sizeof ti.label) == 0 &&
		    memcmp(ti.serialNumber, V.token.serialNumber, sizeof ti.serialNumber) == 0) {
			progress("the token moved from slot %lu to slot %lu", (unsigned long)V.id, (unsigned long)list[i]);
			V.id = list[i];
			return;
		}
}

/* state_up makes the driver's sessions and keys unless they are there.
 * A host that dies meanwhile gets two more tries; one that hangs none (each
 * try would cost the deadline again). */
static int state_up(void)
{
	if (S.up)
		return 0;
	if (!V.have)
		return -1;
	for (int attempt = 0; attempt < 3; attempt++) {
		off_t mark = log_size();
		struct incident in;
		resolve_slot();
		int st = state_try();
		classify(mark, &in);
		if (in.o == O_HANG)
			hangs++;
		if (st == 0) {
			S.up = 1;
			return 0;
		}
		if (st < 0 || in.o == O_HANG)
			break;
	}
	err("the driver's sessions and keys could not be set up: checks that need them are skipped");
	state_drop();
	return -1;
}

/* state_down closes the driver's sessions (their keys go with them). */
static void state_down(void) { state_drop(); }

/* ================================================================== */
/* Inventory                                                           */

static CK_SLOT_ID *slots;
static CK_ULONG nslots;

/* list_slots reads C_GetSlotList(CK_FALSE), sized by a length query. */
static CK_RV list_slots(void)
{
	CK_RV rv;

	for (int tries = 0; tries < 4; tries++) {
		CK_ULONG n = 0;
		if ((rv = F->C_GetSlotList(CK_FALSE, NULL, &n)) != CKR_OK)
			return rv;
		free(slots);
		slots = xcalloc(n + 1, sizeof *slots);
		nslots = n;
		rv = F->C_GetSlotList(CK_FALSE, slots, &nslots);
		if (rv != CKR_BUFFER_TOO_SMALL) /* a slot may have come meanwhile */
			return rv;
	}
	return rv;
}

static CK_RV list_mechs(CK_SLOT_ID slot, CK_MECHANISM_TYPE **out, CK_ULONG *nout)
{
	CK_RV rv;

	*out = NULL;
	*nout = 0;
	for (int tries = 0; tries < 4; tries++) {
		CK_ULONG n = 0;
		if ((rv = F->C_GetMechanismList(slot, NULL, &n)) != CKR_OK)
			return rv;
		free(*out);
		*out = xcalloc(n + 1, sizeof **out);
		*nout = n;
		rv = F->C_GetMechanismList(slot, *out, nout);
		if (rv != CKR_BUFFER_TOO_SMALL)
			return rv;
	}
	return rv;
}

static void inv_token(struct js *j, const CK_TOKEN_INFO *t)
{
	js_open(j, "{");
	js_key(j, "label"), js_pad(j, t->label, sizeof t->label);
	js_key(j, "manufacturer"), js_pad(j, t->manufacturerID, sizeof t->manufacturerID);
	js_key(j, "model"), js_pad(j, t->model, sizeof t->model);
	js_key(j, "serial"), js_pad(j, t->serialNumber, sizeof t->serialNumber);
	js_key(j, "flags"), js_ulong(j, t->flags);
	js_key(j, "max_sessions"), js_ulong(j, t->ulMaxSessionCount);
	js_key(j, "session_count"), js_ulong(j, t->ulSessionCount);
	js_key(j, "max_rw_sessions"), js_ulong(j, t->ulMaxRwSessionCount);
	js_key(j, "rw_session_count"), js_ulong(j, t->ulRwSessionCount);
	js_key(j, "pin_max"), js_ulong(j, t->ulMaxPinLen);
	js_key(j, "pin_min"), js_ulong(j, t->ulMinPinLen);
	js_key(j, "total_public_memory"), js_ulong(j, t->ulTotalPublicMemory);
	js_key(j, "free_public_memory"), js_ulong(j, t->ulFreePublicMemory);
	js_key(j, "total_private_memory"), js_ulong(j, t->ulTotalPrivateMemory);
	js_key(j, "free_private_memory"), js_ulong(j, t->ulFreePrivateMemory);
	js_key(j, "hw"), js_version(j, t->hardwareVersion);
	js_key(j, "fw"), js_version(j, t->firmwareVersion);
	js_key(j, "utc_time"), js_pad(j, t->utcTime, sizeof t->utcTime);
	js_close(j, "}");
}

static void inv_mechs(struct js *j, CK_SLOT_ID slot)
{
	CK_MECHANISM_TYPE *m;
	CK_ULONG n;
	CK_RV rv = list_mechs(slot, &m, &n);

	if (rv != CKR_OK) {
		err("C_GetMechanismList(slot %lu): %s", (unsigned long)slot, ckr(rv));
		js_raw(j, "[]");
		free(m);
		return;
	}
	js_open(j, "[");
	for (CK_ULONG i = 0; i < n; i++) {
		CK_MECHANISM_INFO mi;
		js_open(j, "{");
		js_key(j, "type"), js_ulong(j, m[i]);
		if ((rv = F->C_GetMechanismInfo(slot, m[i], &mi)) == CKR_OK) {
			js_key(j, "min"), js_ulong(j, mi.ulMinKeySize);
			js_key(j, "max"), js_ulong(j, mi.ulMaxKeySize);
			js_key(j, "flags"), js_ulong(j, mi.flags);
		} else {
			js_key(j, "rv"), js_ulong(j, rv);
			err("C_GetMechanismInfo(slot %lu, 0x%lx): %s", (unsigned long)slot, (unsigned long)m[i], ckr(rv));
		}
		js_close(j, "}");
	}
	js_close(j, "]");
	free(m);
}

static void inv_slot(struct js *j, CK_SLOT_ID slot)
{
	CK_SLOT_INFO si;
	CK_TOKEN_INFO ti;
	CK_RV rv;

	js_open(j, "{");
	js_key(j, "id"), js_ulong(j, slot);
	if ((rv = F->C_GetSlotInfo(slot, &si)) != CKR_OK) {
		err("C_GetSlotInfo(slot %lu): %s", (unsigned long)slot, ckr(rv));
		js_key(j, "rv"), js_ulong(j, rv);
		memset(&si, 0, sizeof si);
		si.flags = CKF_TOKEN_PRESENT; /* try the token anyway */
	} else {
		js_key(j, "description"), js_pad(j, si.slotDescription, sizeof si.slotDescription);
		js_key(j, "manufacturer"), js_pad(j, si.manufacturerID, sizeof si.manufacturerID);
		js_key(j, "flags"), js_ulong(j, si.flags);
		js_key(j, "hw"), js_version(j, si.hardwareVersion);
		js_key(j, "fw"), js_version(j, si.firmwareVersion);
	}
	js_key(j, "token");
	rv = (si.flags & CKF_TOKEN_PRESENT) ? F->C_GetTokenInfo(slot, &ti) : CKR_TOKEN_NOT_PRESENT;
	if (rv == CKR_OK)
		inv_token(j, &ti);
	else
		js_raw(j, "null");
	if (rv != CKR_OK && rv != CKR_TOKEN_NOT_PRESENT)
		err("C_GetTokenInfo(slot %lu): %s", (unsigned long)slot, ckr(rv));
	js_key(j, "mechanisms");
	if (rv == CKR_OK)
		inv_mechs(j, slot);
	else
		js_raw(j, "[]");
	js_close(j, "}");
}

static void inventory(struct js *info, struct js *sl)
{
	CK_INFO ci;
	CK_RV rv;

	progress("inventory");
	if ((rv = F->C_GetInfo(&ci)) != CKR_OK) {
		err("C_GetInfo: %s", ckr(rv));
		js_raw(info, "null");
	} else {
		js_open(info, "{");
		js_key(info, "cryptoki"), js_version(info, ci.cryptokiVersion);
		js_key(info, "manufacturer"), js_pad(info, ci.manufacturerID, sizeof ci.manufacturerID);
		js_key(info, "flags"), js_ulong(info, ci.flags);
		js_key(info, "library"), js_pad(info, ci.libraryDescription, sizeof ci.libraryDescription);
		js_key(info, "library_version"), js_version(info, ci.libraryVersion);
		js_close(info, "}");
	}
	if ((rv = list_slots()) != CKR_OK) {
		err("C_GetSlotList(CK_FALSE): %s", ckr(rv));
		js_raw(sl, "[]");
		return;
	}
	js_open(sl, "[");
	for (CK_ULONG i = 0; i < nslots; i++)
		inv_slot(sl, slots[i]);
	js_close(sl, "]");
}

/* ================================================================== */
/* The slot to vet                                                     */

static int token_initialized(CK_SLOT_ID slot, CK_TOKEN_INFO *ti)
{
	return F->C_GetTokenInfo(slot, ti) == CKR_OK && (ti->flags & CKF_TOKEN_INITIALIZED);
}

/* find_label finds the slot whose initialized token has the label. */
static int find_label(const CK_UTF8CHAR label[32], CK_SLOT_ID *out)
{
	CK_TOKEN_INFO ti;

	if (list_slots() != CKR_OK)
		return -1;
	for (CK_ULONG i = 0; i < nslots; i++)
		if (token_initialized(slots[i], &ti) && memcmp(ti.label, label, 32) == 0) {
			*out = slots[i];
			return 0;
		}
	return -1;
}

/* init_token makes a throwaway token in an uninitialized slot: C_InitToken,
 * then the SO sets the user PIN. Some modules (SoftHSM2) move an
 * initialized token to another slot ID, so it is found again by label. */
static int init_token(CK_SLOT_ID slot)
{
	CK_UTF8CHAR label[32];
	CK_SESSION_HANDLE h;
	CK_RV rv;

	memset(label, ' ', sizeof label);
	memcpy(label, "p11isolate-vet", 14);
	progress("initializing the token in slot %lu (VET_INIT_TOKEN=1)", (unsigned long)slot);
	rv = F->C_InitToken(slot, (CK_UTF8CHAR_PTR)O.so_pin, strlen(O.so_pin), label);
	if (rv != CKR_OK) {
		err("C_InitToken(slot %lu, VET_SO_PIN, \"p11isolate-vet\"): %s", (unsigned long)slot, ckr(rv));
		return -1;
	}
	if (find_label(label, &slot) != 0) {
		err("after C_InitToken no slot has the token labelled \"p11isolate-vet\"");
		return -1;
	}
	V.id = slot;
	if ((rv = open_rw(&h)) != CKR_OK) {
		err("C_OpenSession on the new token: %s", ckr(rv));
		return -1;
	}
	rv = F->C_Login(h, CKU_SO, (CK_UTF8CHAR_PTR)O.so_pin, strlen(O.so_pin));
	if (rv == CKR_OK) {
		rv = F->C_InitPIN(h, (CK_UTF8CHAR_PTR)O.pin, strlen(O.pin));
		if (rv != CKR_OK)
			err("C_InitPIN(VET_PIN) on the new token: %s", ckr(rv));
		F->C_Logout(h);
	} else {
		err("C_Login(CKU_SO, VET_SO_PIN) on the new token: %s", ckr(rv));
	}
	F->C_CloseSession(h);
	if (rv != CKR_OK)
		return -1;
	/* A fresh start of the module gives the token the slot ID it keeps
	 * from now on (SoftHSM2 renumbers a token it initialized). */
	if (F->C_Finalize(NULL) != CKR_OK || (rv = F->C_Initialize(&os_locking)) != CKR_OK) {
		err("C_Finalize + C_Initialize after making the token: %s", ckr(rv));
		return -1;
	}
	if (find_label(label, &slot) != 0) {
		err("after a restart no slot has the token labelled \"p11isolate-vet\"");
		return -1;
	}
	V.id = slot;
	return 0;
}

/* choose_slot picks the slot to vet: VET_SLOT, else the first slot with an
 * initialized token, else (VET_INIT_TOKEN=1) a throwaway token. */
static void choose_slot(void)
{
	CK_TOKEN_INFO ti;
	CK_RV rv;

	if ((rv = list_slots()) != CKR_OK) {
		err("C_GetSlotList(CK_FALSE): %s: no slot to vet", ckr(rv));
		return;
	}
	if (O.slot_given) {
		V.have = 1;
		V.id = O.slot;
	}
	for (CK_ULONG i = 0; !V.have && i < nslots; i++)
		if (token_initialized(slots[i], &ti)) {
			V.have = 1;
			V.id = slots[i];
		}
	for (CK_ULONG i = 0; !V.have && O.init_token && O.so_pin && O.pin && i < nslots; i++)
		if (F->C_GetTokenInfo(slots[i], &ti) == CKR_OK && !(ti.flags & CKF_TOKEN_INITIALIZED))
			V.have = init_token(slots[i]) == 0;
	if (!V.have) {
		err(O.init_token && !(O.so_pin && O.pin)
			    ? "no slot has an initialized token, and VET_INIT_TOKEN=1 needs VET_SO_PIN and VET_PIN: nothing that needs a token was vetted"
			    : "no slot has an initialized token: nothing that needs a token was vetted (VET_INIT_TOKEN=1 with VET_SO_PIN and VET_PIN makes a throwaway one)");
		return;
	}
	if ((rv = F->C_GetTokenInfo(V.id, &V.token)) != CKR_OK) {
		err("C_GetTokenInfo(slot %lu): %s: nothing that needs a token was vetted", (unsigned long)V.id, ckr(rv));
		V.have = 0;
		return;
	}
	if ((rv = list_mechs(V.id, &V.mechs, &V.nmechs)) != CKR_OK)
		err("C_GetMechanismList(slot %lu): %s: checks that need a mechanism are skipped", (unsigned long)V.id, ckr(rv));
	progress("vetting slot %lu", (unsigned long)V.id);
	if (O.pin == NULL)
		err("no VET_PIN given: the checks that need a login (and the keys they use) are skipped");
	else if (!can_sign())
		err("the token has no CKM_EC_KEY_PAIR_GEN or no CKM_ECDSA: the checks that sign are skipped");
}

/* ================================================================== */
/* Conformance                                                         */

static struct js CJ;    /* the "conformance" array */
static off_t cmark;     /* the log's size when the current check began */
static int cmark_valid; /* a check is under way */

static void cstart(void)
{
	cmark = log_size();
	cmark_valid = 1;
}

/* verdict adds one rule's result. What the library logged during the check
 * (a crash, a hang, ...) is added to "got": a pass or fail that a dying
 * host produced is the host's doing, and the driver's state died with it. */
static void verdict(const char *id, const char *rule, const char *v, const char *call, const char *got,
		    const char *want, const char *why)
{
	struct incident in = { .o = O_OK };

	if (cmark_valid)
		classify(cmark, &in);
	cmark_valid = 0;
	if (in.o != O_OK) {
		got = xfmt("%s [%s: %s]", got ? got : "", outcome_names[in.o], in.line);
		if (in.o != O_UNDEF)
			S.up = 0;
		if (in.o == O_HANG)
			hangs++;
	}
	js_open(&CJ, "{");
	js_key(&CJ, "id"), js_str(&CJ, id);
	js_key(&CJ, "rule"), js_str(&CJ, rule);
	js_key(&CJ, "verdict"), js_str(&CJ, v);
	if (call != NULL)
		js_key(&CJ, "call"), js_str(&CJ, call);
	if (got != NULL)
		js_key(&CJ, "got"), js_str(&CJ, got);
	if (want != NULL)
		js_key(&CJ, "want"), js_str(&CJ, want);
	if (why != NULL)
		js_key(&CJ, "why"), js_str(&CJ, why);
	js_close(&CJ, "}");
	if (strcmp(v, "fail") == 0)
		progress("conformance: %s fails: %s gave %s, want %s", id, call, got, want);
}

static void check(const char *id, const char *rule, int ok, const char *call, const char *want, const char *got)
{
	verdict(id, rule, ok ? "pass" : "fail", call, got, want, NULL);
}

static void skip(const char *id, const char *rule, const char *why)
{
	cmark_valid = 0;
	verdict(id, rule, "skip", NULL, NULL, NULL, why);
}

/* check_rv is the common case: one call, one return value wanted. */
static void check_rv(const char *id, const char *rule, const char *call, CK_RV want, CK_RV got)
{
	check(id, rule, got == want, call, ckr(want), ckr(got));
}

static int slot_listed(CK_SLOT_ID s)
{
	for (CK_ULONG i = 0; i < nslots; i++)
		if (slots[i] == s)
			return 1;
	return 0;
}

/* invalid_slot is a slot ID the module does not list. */
static CK_SLOT_ID invalid_slot(void)
{
	static const CK_SLOT_ID cand[] = { 0xdeadbeef, 0x7ffffff1, 0x10000, 0x5a5a5a5a };
	for (size_t i = 0; i < sizeof cand / sizeof cand[0]; i++)
		if (!slot_listed(cand[i]))
			return cand[i];
	return 0xfffffff3;
}

/* reset_hw drops whatever operation a check left active in the working
 * session by reopening it. */
static void reset_hw(void)
{
	if (!S.up)
		return;
	F->C_CloseSession(S.hw);
	if (open_rw(&S.hw) != CKR_OK)
		S.up = 0;
}

static void conf_slot_list(void)
{
	static const char *r1 = "C_GetSlotList with pSlotList NULL returns CKR_OK and the number of slots in *pulCount; a buffer of that many then gets the list (PKCS#11 2.40 C_GetSlotList, §5.2)";
	static const char *r2 = "C_GetSlotList with a buffer too small for the list returns CKR_BUFFER_TOO_SMALL (PKCS#11 2.40 C_GetSlotList)";
	static const char *r3 = "C_GetSlotList that returns CKR_BUFFER_TOO_SMALL sets *pulCount to the number of slots (PKCS#11 2.40 C_GetSlotList: \"in either case\")";
	CK_ULONG n = 0, m, k;
	CK_RV rv1, rv2, rv3;

	cstart();
	rv1 = F->C_GetSlotList(CK_FALSE, NULL, &n);
	if (rv1 != CKR_OK) {
		check("slot-list-length-query", r1, 0, "C_GetSlotList(CK_FALSE, NULL, &n)", "CKR_OK", ckr(rv1));
		skip("slot-list-buffer-too-small", r2, "the length query failed");
		skip("slot-list-buffer-too-small-count", r3, "the length query failed");
		return;
	}
	CK_SLOT_ID *list = xcalloc(n + 1, sizeof *list);
	m = n;
	rv2 = F->C_GetSlotList(CK_FALSE, list, &m);
	check("slot-list-length-query", r1, rv2 == CKR_OK && m == n,
	      "C_GetSlotList(CK_FALSE, NULL, &n); C_GetSlotList(CK_FALSE, list, &n)", "CKR_OK, n; then CKR_OK and the same n",
	      xfmt("%s, n=%lu; %s, n=%lu", ckr(rv1), (unsigned long)n, ckr(rv2), (unsigned long)m));
	if (n == 0) {
		skip("slot-list-buffer-too-small", r2, "the module lists no slot");
		skip("slot-list-buffer-too-small-count", r3, "the module lists no slot");
		free(list);
		return;
	}
	cstart();
	k = n - 1;
	rv3 = F->C_GetSlotList(CK_FALSE, list, &k);
	const char *call = xfmt("C_GetSlotList(CK_FALSE, list, &n) with n=%lu, one less than the %lu slots",
				(unsigned long)(n - 1), (unsigned long)n);
	check("slot-list-buffer-too-small", r2, rv3 == CKR_BUFFER_TOO_SMALL, call, "CKR_BUFFER_TOO_SMALL", ckr(rv3));
	cstart();
	check("slot-list-buffer-too-small-count", r3, rv3 == CKR_BUFFER_TOO_SMALL && k == n, call,
	      xfmt("CKR_BUFFER_TOO_SMALL, n=%lu", (unsigned long)n), xfmt("%s, n=%lu", ckr(rv3), (unsigned long)k));
	free(list);
}

static void conf_mech_list(void)
{
	static const char *r1 = "C_GetMechanismList with pMechanismList NULL returns CKR_OK and the number of mechanisms; a buffer of that many then gets the list (PKCS#11 2.40 C_GetMechanismList, §5.2)";
	static const char *r2 = "C_GetMechanismList with a buffer too small for the list returns CKR_BUFFER_TOO_SMALL (PKCS#11 2.40 C_GetMechanismList)";
	static const char *r3 = "C_GetMechanismList that returns CKR_BUFFER_TOO_SMALL sets *pulCount to the number of mechanisms (PKCS#11 2.40 C_GetMechanismList: \"in either case\")";
	CK_ULONG n = 0, m, k;
	CK_RV rv1, rv2, rv3;

	if (!V.have) {
		skip("mechanism-list-length-query", r1, "no slot with a token to ask");
		skip("mechanism-list-buffer-too-small", r2, "no slot with a token to ask");
		skip("mechanism-list-buffer-too-small-count", r3, "no slot with a token to ask");
		return;
	}
	cstart();
	rv1 = F->C_GetMechanismList(V.id, NULL, &n);
	if (rv1 != CKR_OK) {
		check("mechanism-list-length-query", r1, 0, "C_GetMechanismList(slot, NULL, &n)", "CKR_OK", ckr(rv1));
		skip("mechanism-list-buffer-too-small", r2, "the length query failed");
		skip("mechanism-list-buffer-too-small-count", r3, "the length query failed");
		return;
	}
	CK_MECHANISM_TYPE *list = xcalloc(n + 1, sizeof *list);
	m = n;
	rv2 = F->C_GetMechanismList(V.id, list, &m);
	check("mechanism-list-length-query", r1, rv2 == CKR_OK && m == n,
	      "C_GetMechanismList(slot, NULL, &n); C_GetMechanismList(slot, list, &n)",
	      "CKR_OK, n; then CKR_OK and the same n",
	      xfmt("%s, n=%lu; %s, n=%lu", ckr(rv1), (unsigned long)n, ckr(rv2), (unsigned long)m));
	if (n == 0) {
		skip("mechanism-list-buffer-too-small", r2, "the token lists no mechanism");
		skip("mechanism-list-buffer-too-small-count", r3, "the token lists no mechanism");
		free(list);
		return;
	}
	cstart();
	k = n - 1;
	rv3 = F->C_GetMechanismList(V.id, list, &k);
	const char *call = xfmt("C_GetMechanismList(slot, list, &n) with n=%lu, one less than the %lu mechanisms",
				(unsigned long)(n - 1), (unsigned long)n);
	check("mechanism-list-buffer-too-small", r2, rv3 == CKR_BUFFER_TOO_SMALL, call, "CKR_BUFFER_TOO_SMALL", ckr(rv3));
	cstart();
	check("mechanism-list-buffer-too-small-count", r3, rv3 == CKR_BUFFER_TOO_SMALL && k == n, call,
	      xfmt("CKR_BUFFER_TOO_SMALL, n=%lu", (unsigned long)n), xfmt("%s, n=%lu", ckr(rv3), (unsigned long)k));
	free(list);
}

static void conf_invalid_slot(void)
{
	CK_SLOT_ID bad = invalid_slot();
	CK_SLOT_INFO si;
	CK_TOKEN_INFO ti;
	CK_ULONG n = 0;
	CK_SESSION_HANDLE h = 0;
	CK_RV rv;

	cstart();
	check_rv("get-info-null", "C_GetInfo(NULL) returns CKR_ARGUMENTS_BAD (PKCS#11 2.40 §5.4 C_GetInfo, CKR_ARGUMENTS_BAD)",
		 "C_GetInfo(NULL)", CKR_ARGUMENTS_BAD, F->C_GetInfo(NULL));
	cstart();
	check_rv("slot-id-invalid-slot-info", "C_GetSlotInfo of a slot ID the module does not list returns CKR_SLOT_ID_INVALID (PKCS#11 2.40 C_GetSlotInfo)",
		 xfmt("C_GetSlotInfo(0x%lx, &info)", (unsigned long)bad), CKR_SLOT_ID_INVALID, F->C_GetSlotInfo(bad, &si));
	cstart();
	check_rv("slot-id-invalid-token-info", "C_GetTokenInfo of a slot ID the module does not list returns CKR_SLOT_ID_INVALID (PKCS#11 2.40 C_GetTokenInfo)",
		 xfmt("C_GetTokenInfo(0x%lx, &info)", (unsigned long)bad), CKR_SLOT_ID_INVALID, F->C_GetTokenInfo(bad, &ti));
	cstart();
	check_rv("slot-id-invalid-mechanism-list", "C_GetMechanismList of a slot ID the module does not list returns CKR_SLOT_ID_INVALID (PKCS#11 2.40 C_GetMechanismList)",
		 xfmt("C_GetMechanismList(0x%lx, NULL, &n)", (unsigned long)bad), CKR_SLOT_ID_INVALID,
		 F->C_GetMechanismList(bad, NULL, &n));
	cstart();
	rv = F->C_OpenSession(bad, CKF_SERIAL_SESSION, NULL, NULL, &h);
	check_rv("slot-id-invalid-open-session", "C_OpenSession on a slot ID the module does not list returns CKR_SLOT_ID_INVALID (PKCS#11 2.40 C_OpenSession)",
		 xfmt("C_OpenSession(0x%lx, CKF_SERIAL_SESSION, NULL, NULL, &h)", (unsigned long)bad), CKR_SLOT_ID_INVALID, rv);
	if (rv == CKR_OK)
		F->C_CloseSession(h);
}

static const char *const r_pin = "C_Login with a wrong PIN returns CKR_PIN_INCORRECT (PKCS#11 2.40 C_Login)";
static const char *const r_twice = "C_Login when the user is already logged in returns CKR_USER_ALREADY_LOGGED_IN (PKCS#11 2.40 C_Login)";

/* wrong_pin is VET_PIN with an "x" appended, or with its last character
 * changed when that would pass the token's longest PIN (a length error is
 * not what the check is about). */
static char *wrong_pin(const char **how)
{
	size_t n = strlen(O.pin);
	char *w = xcalloc(n + 2, 1);

	memcpy(w, O.pin, n);
	if (V.token.ulMaxPinLen == UNAVAIL || V.token.ulMaxPinLen == 0 || n + 1 <= V.token.ulMaxPinLen) {
		w[n] = 'x';
		*how = "C_Login(hSession, CKU_USER, VET_PIN + \"x\", strlen(VET_PIN) + 1)";
	} else {
		w[n - 1] = w[n - 1] == 'x' ? 'y' : 'x';
		*how = "C_Login(hSession, CKU_USER, VET_PIN with its last character changed, strlen(VET_PIN))";
	}
	return w;
}

/* conf_login tries a wrong PIN once (never when the token says the next
 * wrong one locks the PIN), then logs in twice. A right login right after
 * the wrong one resets the token's retry counter on the tokens that keep
 * one. */
static void conf_login(CK_SESSION_HANDLE h)
{
	CK_TOKEN_INFO ti;
	const char *how;
	CK_RV rv;

	if (O.pin == NULL) {
		skip("login-pin-incorrect", r_pin, "no VET_PIN given (a wrong PIN is VET_PIN + \"x\")");
		skip("login-twice", r_twice, "no VET_PIN given");
		return;
	}
	if (F->C_GetTokenInfo(V.id, &ti) != CKR_OK)
		ti = V.token;
	if (ti.flags & CKF_USER_PIN_LOCKED) {
		skip("login-pin-incorrect", r_pin, "the token says the user PIN is locked");
		skip("login-twice", r_twice, "the token says the user PIN is locked");
		return;
	}
	if (ti.flags & (CKF_USER_PIN_FINAL_TRY | CKF_USER_PIN_COUNT_LOW)) {
		skip("login-pin-incorrect", r_pin, "the token says few PIN tries are left: no wrong PIN tried");
	} else {
		char *w = wrong_pin(&how);
		cstart();
		rv = F->C_Login(h, CKU_USER, (CK_UTF8CHAR_PTR)w, strlen(w));
		memset(w, 0, strlen(w));
		free(w);
		check_rv("login-pin-incorrect", r_pin, how, CKR_PIN_INCORRECT, rv);
		if (rv == CKR_OK)
			F->C_Logout(h);
	}
	cstart();
	rv = F->C_Login(h, CKU_USER, (CK_UTF8CHAR_PTR)O.pin, strlen(O.pin));
	if (rv != CKR_OK) {
		err("C_Login(CKU_USER, VET_PIN): %s", ckr(rv));
		verdict("login-twice", r_twice, "skip", NULL, NULL, NULL, xfmt("the first C_Login with VET_PIN returned %s", ckr(rv)));
		return;
	}
	rv = F->C_Login(h, CKU_USER, (CK_UTF8CHAR_PTR)O.pin, strlen(O.pin));
	check("login-twice", r_twice, rv == CKR_USER_ALREADY_LOGGED_IN,
	      "C_Login(hSession, CKU_USER, VET_PIN, len); C_Login(hSession, CKU_USER, VET_PIN, len)",
	      "CKR_OK; then CKR_USER_ALREADY_LOGGED_IN", xfmt("CKR_OK; then %s", ckr(rv)));
	F->C_Logout(h);
}

/* conf_sessions: the rules about session and object handles, the slot's
 * mechanisms and the login, in a session of their own. */
static void conf_sessions(void)
{
	static const char *r_par = "C_OpenSession without CKF_SERIAL_SESSION returns CKR_SESSION_PARALLEL_NOT_SUPPORTED (PKCS#11 2.40 C_OpenSession)";
	static const char *r_inv = "a session handle the module never handed out gets CKR_SESSION_HANDLE_INVALID (PKCS#11 2.40 CKR_SESSION_HANDLE_INVALID)";
	static const char *r_zero = "CK_INVALID_HANDLE (0) as a session handle gets CKR_SESSION_HANDLE_INVALID (PKCS#11 2.40 CK_INVALID_HANDLE)";
	static const char *r_ci = "C_GetSessionInfo of a closed session's handle returns CKR_SESSION_HANDLE_INVALID (PKCS#11 2.40 CKR_SESSION_HANDLE_INVALID)";
	static const char *r_cc = "C_CloseSession of a closed session's handle returns CKR_SESSION_HANDLE_INVALID (PKCS#11 2.40 CKR_SESSION_HANDLE_INVALID)";
	static const char *r_obj = "C_GetAttributeValue of an object handle the module never handed out returns CKR_OBJECT_HANDLE_INVALID (PKCS#11 2.40 C_GetAttributeValue)";
	static const char *r_objsz = "C_GetObjectSize of an object handle the module never handed out returns CKR_OBJECT_HANDLE_INVALID (PKCS#11 2.40 C_GetObjectSize)";
	static const char *r_find = "C_FindObjects without C_FindObjectsInit returns CKR_OPERATION_NOT_INITIALIZED (PKCS#11 2.40 C_FindObjects)";
	static const char *r_findf = "C_FindObjectsFinal without C_FindObjectsInit returns CKR_OPERATION_NOT_INITIALIZED (PKCS#11 2.40 C_FindObjectsFinal)";
	static const char *r_mech = "C_GetMechanismInfo of a mechanism the token lacks returns CKR_MECHANISM_INVALID (PKCS#11 2.40 C_GetMechanismInfo)";
	CK_SESSION_HANDLE h = 0, h2 = 0;
	CK_SESSION_INFO si;
	CK_MECHANISM_INFO mi;
	CK_RV rv;

	if (!V.have || open_rw(&h) != CKR_OK) {
		const char *why = V.have ? "C_OpenSession failed" : "no slot with a token";
		skip("open-session-not-serial", r_par, why);
		skip("session-handle-invalid", r_inv, why);
		skip("session-handle-zero", r_zero, why);
		skip("session-handle-closed-info", r_ci, why);
		skip("session-handle-closed-close", r_cc, why);
		skip("object-handle-invalid", r_obj, why);
		skip("object-handle-invalid-size", r_objsz, why);
		skip("find-objects-not-initialized", r_find, why);
		skip("find-objects-final-not-initialized", r_findf, why);
		skip("mechanism-info-invalid", r_mech, why);
		skip("login-pin-incorrect", r_pin, why);
		skip("login-twice", r_twice, why);
		return;
	}
	cstart();
	rv = F->C_OpenSession(V.id, 0, NULL, NULL, &h2);
	check_rv("open-session-not-serial", r_par, "C_OpenSession(slot, 0, NULL, NULL, &h)", CKR_SESSION_PARALLEL_NOT_SUPPORTED, rv);
	if (rv == CKR_OK)
		F->C_CloseSession(h2);

	cstart();
	check_rv("session-handle-invalid", r_inv, "C_GetSessionInfo(0xdeadbeef, &info)", CKR_SESSION_HANDLE_INVALID,
		 F->C_GetSessionInfo(0xdeadbeef, &si));
	cstart();
	check_rv("session-handle-zero", r_zero, "C_GetSessionInfo(CK_INVALID_HANDLE, &info)", CKR_SESSION_HANDLE_INVALID,
		 F->C_GetSessionInfo(CK_INVALID_HANDLE, &si));

	cstart();
	if ((rv = open_rw(&h2)) != CKR_OK || (rv = F->C_CloseSession(h2)) != CKR_OK) {
		skip("session-handle-closed-info", r_ci, xfmt("opening and closing a session: %s", ckr(rv)));
		skip("session-handle-closed-close", r_cc, xfmt("opening and closing a session: %s", ckr(rv)));
	} else {
		check_rv("session-handle-closed-info", r_ci, "C_OpenSession(slot, ..., &h); C_CloseSession(h); C_GetSessionInfo(h, &info)",
			 CKR_SESSION_HANDLE_INVALID, F->C_GetSessionInfo(h2, &si));
		cstart();
		check_rv("session-handle-closed-close", r_cc, "C_OpenSession(slot, ..., &h); C_CloseSession(h); C_CloseSession(h)",
			 CKR_SESSION_HANDLE_INVALID, F->C_CloseSession(h2));
	}

	CK_OBJECT_CLASS cls;
	CK_ATTRIBUTE a = { CKA_CLASS, &cls, sizeof cls };
	CK_ULONG sz = 0;
	cstart();
	check_rv("object-handle-invalid", r_obj, "C_GetAttributeValue(hSession, 0xdeadbeef, {CKA_CLASS, &class, sizeof class}, 1)",
		 CKR_OBJECT_HANDLE_INVALID, F->C_GetAttributeValue(h, 0xdeadbeef, &a, 1));
	cstart();
	rv = F->C_GetObjectSize(h, 0xdeadbeef, &sz);
	if (rv == CKR_FUNCTION_NOT_SUPPORTED)
		skip("object-handle-invalid-size", r_objsz, "the module does not support C_GetObjectSize");
	else
		check_rv("object-handle-invalid-size", r_objsz, "C_GetObjectSize(hSession, 0xdeadbeef, &size)",
			 CKR_OBJECT_HANDLE_INVALID, rv);

	CK_OBJECT_HANDLE found[4];
	CK_ULONG nf = 0;
	cstart();
	check_rv("find-objects-not-initialized", r_find, "C_FindObjects(hSession, found, 4, &n)", CKR_OPERATION_NOT_INITIALIZED,
		 F->C_FindObjects(h, found, 4, &nf));
	cstart();
	check_rv("find-objects-final-not-initialized", r_findf, "C_FindObjectsFinal(hSession)", CKR_OPERATION_NOT_INITIALIZED,
		 F->C_FindObjectsFinal(h));
	cstart();
	check_rv("mechanism-info-invalid", r_mech, "C_GetMechanismInfo(slot, 0x7fffff00, &info)", CKR_MECHANISM_INVALID,
		 F->C_GetMechanismInfo(V.id, MECH_UNKNOWN, &mi));

	conf_login(h);
	F->C_CloseSession(h);
}

static CK_RV sign_once(CK_SESSION_HANDLE h, const CK_BYTE *d, CK_BYTE *sig, CK_ULONG *len)
{
	CK_MECHANISM m = { CKM_ECDSA, NULL, 0 };
	CK_RV rv = F->C_SignInit(h, &m, S.priv);
	return rv != CKR_OK ? rv : F->C_Sign(h, (CK_BYTE_PTR)d, 32, sig, len);
}

static CK_RV verify_once(CK_SESSION_HANDLE h, const CK_BYTE *d, CK_BYTE *sig, CK_ULONG len)
{
	CK_MECHANISM m = { CKM_ECDSA, NULL, 0 };
	CK_RV rv = F->C_VerifyInit(h, &m, S.pub);
	return rv != CKR_OK ? rv : F->C_Verify(h, (CK_BYTE_PTR)d, 32, sig, len);
}

/* keys_why says why checks that need the EC key are skipped (NULL: they
 * can run). */
static const char *keys_why(void)
{
	if (!V.have)
		return "no slot with a token";
	if (O.pin == NULL)
		return "no VET_PIN given: the session key pair needs a login";
	if (!can_sign())
		return "the token has no CKM_EC_KEY_PAIR_GEN or no CKM_ECDSA";
	if (state_up() != 0 || S.priv == 0)
		return "the EC session key pair could not be made";
	return NULL;
}

static void conf_sign(void)
{
	static const char *r_q = "C_Sign with pSignature NULL returns CKR_OK and a length that suffices for the signature, and leaves the operation active (PKCS#11 2.40 §5.2, C_Sign)";
	static const char *r_s = "C_Sign with a buffer too small returns CKR_BUFFER_TOO_SMALL (PKCS#11 2.40 §5.2)";
	static const char *r_l = "C_Sign that returns CKR_BUFFER_TOO_SMALL sets *pulSignatureLen to the exact length needed (PKCS#11 2.40 §5.2: \"in either case, *pulBufLen is set to hold the exact number of bytes needed\")";
	static const char *r_c = "C_Sign that returns CKR_BUFFER_TOO_SMALL leaves the operation active: the next C_Sign with room succeeds and C_Verify accepts its signature (PKCS#11 2.40 C_Sign)";
	const char *why = keys_why();
	CK_BYTE dig[32], sig[512];
	CK_ULONG q = 0, l = sizeof sig, one = 1, l2 = sizeof sig;
	CK_MECHANISM m = { CKM_ECDSA, NULL, 0 };
	CK_RV r0, r1, r2 = SKIPPED, r3 = SKIPPED;

	if (why != NULL) {
		skip("sign-length-query", r_q, why);
		skip("sign-buffer-too-small", r_s, why);
		skip("sign-buffer-too-small-length", r_l, why);
		skip("sign-buffer-too-small-continues", r_c, why);
		return;
	}
	for (int i = 0; i < 32; i++)
		dig[i] = (CK_BYTE)(i * 7 + 1);
	cstart();
	r0 = F->C_SignInit(S.hw, &m, S.priv);
	r1 = r0 == CKR_OK ? F->C_Sign(S.hw, dig, 32, NULL, &q) : r0;
	if (r1 == CKR_OK)
		r2 = F->C_Sign(S.hw, dig, 32, sig, &l);
	check("sign-length-query", r_q, r1 == CKR_OK && r2 == CKR_OK && q >= l && l > 0,
	      "C_SignInit(hSession, {CKM_ECDSA}, hPrivate); C_Sign(hSession, hash, 32, NULL, &n); C_Sign(hSession, hash, 32, sig, &n)",
	      "CKR_OK and n at least the signature's length; then CKR_OK",
	      r2 == SKIPPED ? ckr(r1) : xfmt("%s, n=%lu; then %s, n=%lu", ckr(r1), (unsigned long)q, ckr(r2), (unsigned long)l));
	reset_hw();
	if (!S.up && state_up() != 0)
		return;

	cstart();
	r0 = F->C_SignInit(S.hw, &m, S.priv);
	r1 = r0 == CKR_OK ? F->C_Sign(S.hw, dig, 32, sig, &one) : r0;
	const char *call = "C_SignInit(hSession, {CKM_ECDSA}, hPrivate); C_Sign(hSession, hash, 32, sig, &n) with n=1";
	if (r1 == CKR_BUFFER_TOO_SMALL) {
		r2 = F->C_Sign(S.hw, dig, 32, sig, &l2);
		if (r2 == CKR_OK)
			r3 = verify_once(S.hw, dig, sig, l2);
	}
	check("sign-buffer-too-small", r_s, r1 == CKR_BUFFER_TOO_SMALL, call, "CKR_BUFFER_TOO_SMALL", ckr(r1));
	if (r1 != CKR_BUFFER_TOO_SMALL) {
		skip("sign-buffer-too-small-length", r_l, xfmt("C_Sign with a 1-byte buffer returned %s", ckr(r1)));
		skip("sign-buffer-too-small-continues", r_c, xfmt("C_Sign with a 1-byte buffer returned %s", ckr(r1)));
		reset_hw();
		return;
	}
	cstart();
	check("sign-buffer-too-small-length", r_l, r2 == CKR_OK && one == l2,
	      xfmt("%s; then C_Sign(hSession, hash, 32, sig, &n) with n=%zu", call, sizeof sig),
	      r2 == CKR_OK ? xfmt("n=%lu (the length of the signature then made)", (unsigned long)l2)
			   : "n = the length of the signature then made",
	      r2 == CKR_OK ? xfmt("CKR_BUFFER_TOO_SMALL, n=%lu; then CKR_OK, n=%lu", (unsigned long)one, (unsigned long)l2)
			   : xfmt("CKR_BUFFER_TOO_SMALL, n=%lu; then %s", (unsigned long)one, ckr(r2)));
	cstart();
	check("sign-buffer-too-small-continues", r_c, r2 == CKR_OK && r3 == CKR_OK,
	      xfmt("%s; then C_Sign(hSession, hash, 32, sig, &n) with n=%zu; C_VerifyInit(hSession, {CKM_ECDSA}, hPublic); C_Verify(hSession, hash, 32, sig, n)",
		   call, sizeof sig),
	      "C_Sign: CKR_OK; C_Verify: CKR_OK",
	      r2 == CKR_OK ? xfmt("C_Sign: CKR_OK; C_Verify: %s", ckr(r3)) : xfmt("C_Sign: %s", ckr(r2)));
	reset_hw();
}

/* The rules of C_GetAttributeValue, on the sensitive EC private key. */
static const char *const r_alen = "C_GetAttributeValue with pValue NULL returns CKR_OK and the attribute's exact length; a buffer of that length then gets the value (PKCS#11 2.40 C_GetAttributeValue, case 3 and 4)";
static const char *const r_asens = "C_GetAttributeValue of a sensitive attribute (CKA_VALUE of a sensitive private key) sets ulValueLen to CK_UNAVAILABLE_INFORMATION and returns CKR_ATTRIBUTE_SENSITIVE (PKCS#11 2.40 C_GetAttributeValue, case 1)";
static const char *const r_atype = "C_GetAttributeValue of an attribute type the object does not have (0x7fff0001) sets ulValueLen to CK_UNAVAILABLE_INFORMATION and returns CKR_ATTRIBUTE_TYPE_INVALID (PKCS#11 2.40 C_GetAttributeValue, case 2)";
static const char *const r_asmall = "C_GetAttributeValue with a buffer too small for the value sets ulValueLen to CK_UNAVAILABLE_INFORMATION and returns CKR_BUFFER_TOO_SMALL (PKCS#11 2.40 C_GetAttributeValue, case 5)";
static const char *const r_amix = "C_GetAttributeValue processes every attribute of the template even when some are sensitive, invalid or too small: the others are filled (PKCS#11 2.40 §5.7 C_GetAttributeValue: \"the call MUST nonetheless have processed every attribute in the template\")";

static void attr_one(const char *id, const char *rule, const char *call, CK_ATTRIBUTE_TYPE t, CK_ULONG room, CK_RV want)
{
	CK_BYTE buf[256];
	CK_ATTRIBUTE a = { t, buf, room };
	CK_RV rv;

	cstart();
	rv = F->C_GetAttributeValue(S.hw, S.priv, &a, 1);
	check(id, rule, rv == want && a.ulValueLen == UNAVAIL, call, xfmt("%s, ulValueLen=CK_UNAVAILABLE_INFORMATION", ckr(want)),
	      xfmt("%s, ulValueLen=%s", ckr(rv), lenstr(a.ulValueLen)));
}

/* attr_mixed asks for sensitive, unknown and too-small attributes among
 * good ones; every good one must come back filled. */
static void attr_mixed(CK_ULONG ecp_len)
{
	CK_OBJECT_CLASS cls = 0x5a5a5a5a;
	CK_KEY_TYPE kt = 0x5a5a5a5a;
	CK_BBOOL sign = 0x5a;
	CK_BYTE value[256], unk[16], small[1];
	CK_ATTRIBUTE t[] = {
		{ CKA_VALUE, value, sizeof value }, { CKA_CLASS, &cls, sizeof cls }, { ATTR_UNKNOWN, unk, sizeof unk },
		{ CKA_KEY_TYPE, &kt, sizeof kt },   { CKA_EC_PARAMS, small, 1 },   { CKA_SIGN, &sign, 1 },
		{ CKA_EC_PARAMS, NULL, 0 },
	};
	CK_RV rv;

	cstart();
	rv = F->C_GetAttributeValue(S.hw, S.priv, t, 7);
	int ok = (rv == CKR_ATTRIBUTE_SENSITIVE || rv == CKR_ATTRIBUTE_TYPE_INVALID || rv == CKR_BUFFER_TOO_SMALL) &&
		 t[0].ulValueLen == UNAVAIL && t[2].ulValueLen == UNAVAIL && t[4].ulValueLen == UNAVAIL &&
		 cls == CKO_PRIVATE_KEY && t[1].ulValueLen == sizeof cls && kt == CKK_EC && t[3].ulValueLen == sizeof kt &&
		 sign == CK_TRUE && t[5].ulValueLen == 1 && t[6].ulValueLen == ecp_len;
	check("attribute-template-all-processed", r_amix, ok,
	      "C_GetAttributeValue(hSession, hPrivate, {{CKA_VALUE, buf, 256}, {CKA_CLASS, &class, 8}, {0x7fff0001, buf, 16}, {CKA_KEY_TYPE, &type, 8}, {CKA_EC_PARAMS, buf, 1}, {CKA_SIGN, &sign, 1}, {CKA_EC_PARAMS, NULL, 0}}, 7)",
	      xfmt("CKR_ATTRIBUTE_SENSITIVE, CKR_ATTRIBUTE_TYPE_INVALID or CKR_BUFFER_TOO_SMALL; CKA_VALUE, 0x7fff0001 and the 1-byte CKA_EC_PARAMS CK_UNAVAILABLE_INFORMATION; class=CKO_PRIVATE_KEY (3), type=CKK_EC (3), sign=CK_TRUE, the NULL CKA_EC_PARAMS %lu bytes",
		   (unsigned long)ecp_len),
	      xfmt("%s; CKA_VALUE %s, 0x7fff0001 %s, CKA_EC_PARAMS(1 byte) %s; class=0x%lx (len %s), type=0x%lx (len %s), sign=0x%x (len %s), CKA_EC_PARAMS(NULL) len %s",
		   ckr(rv), lenstr(t[0].ulValueLen), lenstr(t[2].ulValueLen), lenstr(t[4].ulValueLen), (unsigned long)cls,
		   lenstr(t[1].ulValueLen), (unsigned long)kt, lenstr(t[3].ulValueLen), sign, lenstr(t[5].ulValueLen),
		   lenstr(t[6].ulValueLen)));
}

static void conf_attributes(void)
{
	const char *why = keys_why();
	CK_BYTE buf[256];
	CK_ATTRIBUTE a = { CKA_EC_PARAMS, NULL, 0 };
	CK_RV r1, r2 = SKIPPED;
	CK_ULONG len;

	if (why != NULL) {
		skip("attribute-length-query", r_alen, why);
		skip("attribute-sensitive", r_asens, why);
		skip("attribute-type-invalid", r_atype, why);
		skip("attribute-buffer-too-small", r_asmall, why);
		skip("attribute-template-all-processed", r_amix, why);
		return;
	}
	cstart();
	r1 = F->C_GetAttributeValue(S.hw, S.priv, &a, 1);
	len = a.ulValueLen;
	if (r1 == CKR_OK && len > 0 && len <= sizeof buf) {
		a.pValue = buf;
		r2 = F->C_GetAttributeValue(S.hw, S.priv, &a, 1);
	}
	check("attribute-length-query", r_alen, r2 == CKR_OK && a.ulValueLen == len,
	      "C_GetAttributeValue(hSession, hPrivate, {CKA_EC_PARAMS, NULL, 0}, 1); C_GetAttributeValue(hSession, hPrivate, {CKA_EC_PARAMS, buf, n}, 1)",
	      "CKR_OK, n = the length; then CKR_OK with n bytes",
	      r2 == SKIPPED ? xfmt("%s, n=%s", ckr(r1), lenstr(len))
			    : xfmt("%s, n=%s; then %s, n=%s", ckr(r1), lenstr(len), ckr(r2), lenstr(a.ulValueLen)));
	attr_one("attribute-sensitive", r_asens, "C_GetAttributeValue(hSession, hPrivate, {CKA_VALUE, buf, 256}, 1)", CKA_VALUE,
		 256, CKR_ATTRIBUTE_SENSITIVE);
	attr_one("attribute-type-invalid", r_atype, "C_GetAttributeValue(hSession, hPrivate, {0x7fff0001, buf, 16}, 1)",
		 ATTR_UNKNOWN, 16, CKR_ATTRIBUTE_TYPE_INVALID);
	attr_one("attribute-buffer-too-small", r_asmall, "C_GetAttributeValue(hSession, hPrivate, {CKA_EC_PARAMS, buf, 1}, 1)",
		 CKA_EC_PARAMS, 1, CKR_BUFFER_TOO_SMALL);
	attr_mixed(r1 == CKR_OK ? len : sizeof p256);
}

/* ------------------------------------------------------------------ */
/* Threads, fork, C_Initialize / C_Finalize                            */

#define WORKERS 4
#define ROUNDS 200

/* The reference digest of the threads check's data (digest mode). */
static CK_BYTE kib[1024], ref_digest[64];
static CK_ULONG ref_len;

struct worker {
	int id;
	int ok, failed, unverified;
	const char *first_fn;
	CK_RV first_rv;
};

static void worker_fail(struct worker *w, const char *fn, CK_RV rv)
{
	if (w->first_fn == NULL) {
		w->first_fn = fn;
		w->first_rv = rv;
	}
	w->failed++;
}

static CK_RV digest_once(CK_SESSION_HANDLE h, CK_MECHANISM_TYPE mt, CK_BYTE *out, CK_ULONG *len)
{
	CK_MECHANISM m = { mt, NULL, 0 };
	CK_RV rv = F->C_DigestInit(h, &m);
	return rv != CKR_OK ? rv : F->C_Digest(h, kib, sizeof kib, out, len);
}

static CK_MECHANISM_TYPE digest_mech(void)
{
	return has_mech(CKM_SHA256) ? CKM_SHA256 : has_mech(CKM_SHA_1) ? CKM_SHA_1 : CKM_SHA256;
}

/* worker_round signs and verifies (or digests) once in session h. */
static void worker_round(struct worker *w, CK_SESSION_HANDLE h, int i)
{
	CK_BYTE d[32], sig[512];
	CK_ULONG l = sizeof sig;
	CK_RV rv;

	if (S.priv == 0) {
		rv = digest_once(h, digest_mech(), sig, &l);
		if (rv != CKR_OK)
			worker_fail(w, "C_DigestInit+C_Digest", rv);
		else if (l != ref_len || memcmp(sig, ref_digest, l) != 0)
			w->unverified++;
		else
			w->ok++;
		return;
	}
	memset(d, w->id, sizeof d);
	d[0] = (CK_BYTE)i;
	d[1] = (CK_BYTE)(i >> 8);
	if ((rv = sign_once(h, d, sig, &l)) != CKR_OK) {
		worker_fail(w, "C_SignInit+C_Sign", rv);
		return;
	}
	rv = verify_once(h, d, sig, l);
	if (rv == CKR_SIGNATURE_INVALID)
		w->unverified++;
	else if (rv != CKR_OK)
		worker_fail(w, "C_VerifyInit+C_Verify", rv);
	else
		w->ok++;
}

static void *worker_run(void *arg)
{
	struct worker *w = arg;
	CK_SESSION_HANDLE h;
	CK_RV rv = open_rw(&h);

	if (rv != CKR_OK) {
		worker_fail(w, "C_OpenSession", rv);
		w->failed = ROUNDS;
		return NULL;
	}
	for (int i = 0; i < ROUNDS; i++)
		worker_round(w, h, i);
	F->C_CloseSession(h);
	return NULL;
}

static void conf_threads(void)
{
	static const char *rule = "with CKF_OS_LOCKING_OK the module is safe to call from several threads at once: 4 threads, each in its own session, sign and verify (or digest) 200 times, all CKR_OK, every signature verifies (PKCS#11 2.40 C_Initialize, CKF_OS_LOCKING_OK)";
	struct worker w[WORKERS];
	pthread_t t[WORKERS];
	int started = 0, ok = 0, failed = 0, unverified = 0;
	const char *first_fn = NULL;
	CK_RV first_rv = CKR_OK;
	int signing = keys_why() == NULL;

	if (!V.have) {
		skip("os-locking-threads", rule, "no slot with a token");
		return;
	}
	if (!signing && !has_mech(CKM_SHA256) && !has_mech(CKM_SHA_1)) {
		skip("os-locking-threads", rule, "no signing key (no VET_PIN or no EC) and no CKM_SHA256 or CKM_SHA_1 to digest with");
		return;
	}
	if (state_up() != 0) {
		skip("os-locking-threads", rule, "the driver's session could not be opened");
		return;
	}
	if (!signing) {
		ref_len = sizeof ref_digest;
		CK_RV rv = digest_once(S.hw, digest_mech(), ref_digest, &ref_len);
		if (rv != CKR_OK) {
			skip("os-locking-threads", rule, xfmt("a digest in one thread already fails: %s", ckr(rv)));
			return;
		}
	}
	cstart();
	for (int i = 0; i < WORKERS; i++) {
		memset(&w[i], 0, sizeof w[i]);
		w[i].id = i + 1;
		if (pthread_create(&t[i], NULL, worker_run, &w[i]) != 0)
			break;
		started++;
	}
	for (int i = 0; i < started; i++) {
		pthread_join(t[i], NULL);
		ok += w[i].ok;
		failed += w[i].failed;
		unverified += w[i].unverified;
		if (first_fn == NULL && w[i].first_fn != NULL) {
			first_fn = w[i].first_fn;
			first_rv = w[i].first_rv;
		}
	}
	const char *what = signing ? "sign+verify" : "digest";
	const char *got = xfmt("%d threads: %d of %d %s rounds CKR_OK%s%s", started, ok, started * ROUNDS, what,
			       failed ? xfmt("; %d failed, the first %s: %s", failed, first_fn, ckr(first_rv)) : "",
			       unverified ? xfmt("; %d %s", unverified, signing ? "signatures did not verify" : "digests differed from one thread's")
					  : "");
	check("os-locking-threads", rule, started == WORKERS && ok == WORKERS * ROUNDS,
	      signing ? "4 threads x 200 x { C_SignInit(h, {CKM_ECDSA}, hPrivate); C_Sign; C_VerifyInit(h, {CKM_ECDSA}, hPublic); C_Verify }, h = each thread's C_OpenSession"
		      : "4 threads x 200 x { C_DigestInit(h, {CKM_SHA256}); C_Digest(h, 1 KiB, ...) }, h = each thread's C_OpenSession",
	      xfmt("%d of %d rounds CKR_OK%s", WORKERS * ROUNDS, WORKERS * ROUNDS,
		   signing ? ", every signature verified" : ", every digest the same"),
	      got);
}

/* What a forked child tells its parent. */
struct child_report {
	CK_RV init, open, op, fin;
	char op_name[48];
};

/* child_op signs and verifies with a key of its own, or digests. */
static CK_RV child_op(CK_SESSION_HANDLE h, struct child_report *r)
{
	CK_BYTE d[32] = { 1, 2, 3 }, sig[512];
	CK_ULONG l = sizeof sig;
	CK_RV rv;

	if (O.pin != NULL && can_sign()) {
		snprintf(r->op_name, sizeof r->op_name, "C_Login, C_GenerateKeyPair, C_Sign, C_Verify");
		if ((rv = login(h)) != CKR_OK || (rv = gen_ec(h, &S.pub, &S.priv)) != CKR_OK ||
		    (rv = sign_once(h, d, sig, &l)) != CKR_OK)
			return rv;
		return verify_once(h, d, sig, l);
	}
	snprintf(r->op_name, sizeof r->op_name, "C_DigestInit, C_Digest");
	return digest_once(h, digest_mech(), sig, &l);
}

static void child_run(int fd)
{
	struct child_report r = { SKIPPED, SKIPPED, SKIPPED, SKIPPED, "" };
	CK_SESSION_HANDLE h;

	r.init = F->C_Initialize(&os_locking);
	if (r.init == CKR_OK || r.init == CKR_CRYPTOKI_ALREADY_INITIALIZED) {
		resolve_slot(); /* the child has a host of its own */
		r.open = open_rw(&h);
		if (r.open == CKR_OK)
			r.op = child_op(h, &r);
		r.fin = F->C_Finalize(NULL);
	}
	ssize_t n = write(fd, &r, sizeof r);
	_exit(n == (ssize_t)sizeof r ? 0 : 3);
}

/* wait_child reads the child's report, waiting no longer than the deadline
 * allows; 0, or -1 with why. */
static int wait_child(pid_t pid, int fd, struct child_report *r, const char **why)
{
	int ms = O.deadline > 0 ? (int)(O.deadline * 4000) + 20000 : 120000;
	struct pollfd p = { fd, POLLIN, 0 };
	int st = 0, n;

	while ((n = poll(&p, 1, ms)) < 0 && errno == EINTR) {
	}
	if (n == 0) {
		kill(pid, SIGKILL);
		waitpid(pid, &st, 0);
		*why = xfmt("the child did not finish within %d s", ms / 1000);
		return -1;
	}
	ssize_t got = read(fd, r, sizeof *r);
	waitpid(pid, &st, 0);
	if (got == (ssize_t)sizeof *r)
		return 0;
	*why = WIFSIGNALED(st) ? xfmt("the child died of signal %d", WTERMSIG(st))
			       : xfmt("the child exited with status %d and no report", WEXITSTATUS(st));
	return -1;
}

static void conf_fork(void)
{
	static const char *rule = "a child forked after C_Initialize can call C_Initialize (CKR_OK; CKR_CRYPTOKI_ALREADY_INITIALIZED, which many modules return, is accepted), then open a session and sign or digest with CKR_OK (PKCS#11 2.40 C_Initialize: a forked child calls C_Initialize before using Cryptoki)";
	struct child_report r;
	const char *why = NULL;
	int p[2];

	if (!V.have) {
		skip("initialize-after-fork", rule, "no slot with a token");
		return;
	}
	if (pipe2(p, O_CLOEXEC) != 0) {
		skip("initialize-after-fork", rule, xfmt("pipe: %s", strerror(errno)));
		return;
	}
	fflush(stdout);
	fflush(stderr);
	cstart();
	pid_t pid = fork();
	if (pid == 0) {
		close(p[0]);
		child_run(p[1]);
	}
	close(p[1]);
	if (pid < 0) {
		close(p[0]);
		skip("initialize-after-fork", rule, xfmt("fork: %s", strerror(errno)));
		return;
	}
	int st = wait_child(pid, p[0], &r, &why);
	close(p[0]);
	const char *call = "fork(); in the child: C_Initialize(&{CKF_OS_LOCKING_OK}); C_OpenSession; sign+verify with a new session key pair (or digest); C_Finalize(NULL)";
	if (st != 0) {
		check("initialize-after-fork", rule, 0, call, "CKR_OK throughout", why);
		return;
	}
	check("initialize-after-fork", rule,
	      (r.init == CKR_OK || r.init == CKR_CRYPTOKI_ALREADY_INITIALIZED) && r.open == CKR_OK && r.op == CKR_OK,
	      call, "C_Initialize: CKR_OK or CKR_CRYPTOKI_ALREADY_INITIALIZED; C_OpenSession and the operations: CKR_OK",
	      xfmt("C_Initialize: %s; C_OpenSession: %s; %s: %s; C_Finalize: %s", ckr(r.init),
		   r.open == SKIPPED ? "not called" : ckr(r.open), r.op_name[0] ? r.op_name : "the operations",
		   r.op == SKIPPED ? "not called" : ckr(r.op), r.fin == SKIPPED ? "not called" : ckr(r.fin)));
}

/* A CreateMutex callback that is never meant to be called: C_Initialize
 * gets it without the other three. */
static CK_RV lone_create_mutex(CK_VOID_PTR_PTR m)
{
	*m = NULL;
	return CKR_GENERAL_ERROR;
}

static int initialized = 1; /* the library is initialized (the driver's view) */

/* conf_init_args: the rules of C_Initialize and C_Finalize. They finalize
 * the library, so they come last, and the library ends initialized again
 * (a fresh host) for the sections that follow. */
static void conf_init_args(void)
{
	static const char *r_twice = "C_Initialize when already initialized returns CKR_CRYPTOKI_ALREADY_INITIALIZED (PKCS#11 2.40 C_Initialize)";
	static const char *r_fin = "C_Finalize with pReserved not NULL returns CKR_ARGUMENTS_BAD (PKCS#11 2.40 C_Finalize: \"pReserved ... should be set to NULL_PTR\")";
	static const char *r_part = "C_Initialize with some but not all of the mutex callbacks (CreateMutex only) returns CKR_ARGUMENTS_BAD (PKCS#11 2.40 C_Initialize)";
	static const char *r_info = "C_GetInfo after C_Finalize returns CKR_CRYPTOKI_NOT_INITIALIZED (PKCS#11 2.40 CKR_CRYPTOKI_NOT_INITIALIZED)";
	static const char *r_list = "C_GetSlotList after C_Finalize returns CKR_CRYPTOKI_NOT_INITIALIZED (PKCS#11 2.40 CKR_CRYPTOKI_NOT_INITIALIZED)";
	static const char *r_fin2 = "C_Finalize when not initialized returns CKR_CRYPTOKI_NOT_INITIALIZED (PKCS#11 2.40 C_Finalize)";
	static const char *r_os = "C_Initialize with CKF_OS_LOCKING_OK and no callbacks returns CKR_OK (PKCS#11 2.40 C_Initialize)";
	CK_C_INITIALIZE_ARGS part = { .CreateMutex = lone_create_mutex };
	CK_INFO ci;
	CK_ULONG n = 0;
	int reserved = 0;
	CK_RV rv;

	state_down();
	cstart();
	check_rv("initialize-twice", r_twice, "C_Initialize(&{CKF_OS_LOCKING_OK}); C_Initialize(&{CKF_OS_LOCKING_OK})",
		 CKR_CRYPTOKI_ALREADY_INITIALIZED, F->C_Initialize(&os_locking));
	cstart();
	rv = F->C_Finalize(&reserved);
	check_rv("finalize-reserved-not-null", r_fin, "C_Finalize(&x)", CKR_ARGUMENTS_BAD, rv);
	if (rv != CKR_OK && (rv = F->C_Finalize(NULL)) != CKR_OK)
		err("C_Finalize(NULL): %s", ckr(rv));
	cstart();
	rv = F->C_Initialize(&part);
	check_rv("initialize-partial-mutex-callbacks", r_part,
		 "C_Initialize(&{.CreateMutex = fn, .DestroyMutex = NULL, .LockMutex = NULL, .UnlockMutex = NULL, .flags = 0})",
		 CKR_ARGUMENTS_BAD, rv);
	if (rv == CKR_OK)
		F->C_Finalize(NULL);
	cstart();
	check_rv("after-finalize-get-info", r_info, "C_Finalize(NULL); C_GetInfo(&info)", CKR_CRYPTOKI_NOT_INITIALIZED,
		 F->C_GetInfo(&ci));
	cstart();
	check_rv("after-finalize-get-slot-list", r_list, "C_Finalize(NULL); C_GetSlotList(CK_FALSE, NULL, &n)",
		 CKR_CRYPTOKI_NOT_INITIALIZED, F->C_GetSlotList(CK_FALSE, NULL, &n));
	cstart();
	check_rv("finalize-not-initialized", r_fin2, "C_Finalize(NULL); C_Finalize(NULL)", CKR_CRYPTOKI_NOT_INITIALIZED,
		 F->C_Finalize(NULL));
	cstart();
	rv = F->C_Initialize(&os_locking);
	check_rv("initialize-os-locking", r_os, "C_Initialize(&{.flags = CKF_OS_LOCKING_OK})", CKR_OK, rv);
	if (rv != CKR_OK && rv != CKR_CRYPTOKI_ALREADY_INITIALIZED) {
		err("C_Initialize(CKF_OS_LOCKING_OK) after C_Finalize: %s: the sections after conformance are skipped", ckr(rv));
		initialized = 0;
	}
}

static void conformance(void)
{
	progress("conformance");
	js_open(&CJ, "[");
	conf_slot_list();
	conf_mech_list();
	conf_invalid_slot();
	conf_sessions();
	conf_sign();
	conf_attributes();
	conf_threads();
	conf_fork();
	conf_init_args();
	js_close(&CJ, "]");
}

/* ================================================================== */
/* Robustness                                                          */

/* Each call goes through TRY, which classifies it by the log, counts it,
 * and records every one that is not "ok" as a finding with its reproducer.
 * Reproducers name the driver's handles: hSession (an open R/W session,
 * the user logged in when VET_PIN is given), hClosed (a session opened and
 * closed), hPrivate / hPublic (the EC P-256 session key pair, the private
 * key sensitive and unextractable), hAES (an AES-256 session key, sensitive
 * and unextractable), slot (the slot vetted). A function that hangs twice
 * is not called again, and the section stops after 5 hangs: each costs the
 * deadline. */
static struct {
	long calls, out[O_NOUT];
	int stop, hangs0, start_fails;
	off_t mark;
	double t0; /* when the current call began */
	struct js findings;
	struct {
		const char *fn;
		int hangs;
	} fh[96];
	int nfh;
} R;

#define MAX_HANGS 5
#define FN_HANGS 2

static int *fn_hangs(const char *fn)
{
	for (int i = 0; i < R.nfh; i++)
		if (strcmp(R.fh[i].fn, fn) == 0)
			return &R.fh[i].hangs;
	if (R.nfh == (int)(sizeof R.fh / sizeof R.fh[0]))
		return &R.fh[0].hangs; /* cannot happen: 68 functions */
	R.fh[R.nfh].fn = fn;
	R.fh[R.nfh].hangs = 0;
	return &R.fh[R.nfh++].hangs;
}

static void rb_stop(const char *why)
{
	if (!R.stop)
		err("robustness stopped early: %s", why);
	R.stop = 1;
}

/* rb_enter decides whether the call is made, and brings the driver's
 * sessions and keys back after a host died. */
static int rb_enter(const char *fn)
{
	if (R.stop || *fn_hangs(fn) >= FN_HANGS)
		return 1;
	if (!S.up && !S.broken && state_up() != 0)
		S.broken = 1; /* the calls go on with invalid handles */
	if (hangs - R.hangs0 >= MAX_HANGS)
		rb_stop(xfmt("%d hangs", hangs - R.hangs0));
	return R.stop;
}

__attribute__((format(printf, 3, 4))) static CK_RV rb_leave(const char *fn, CK_RV rv, const char *fmt, ...)
{
	struct incident in;
	va_list ap;
	char *call;

	double took = (mono_us() - R.t0) / 1e6;

	classify(R.mark, &in);
	R.calls++;
	R.out[in.o]++;
	if (in.o == O_OK && !in.start_failed && took < 1)
		return rv;
	va_start(ap, fmt);
	if (vasprintf(&call, fmt, ap) < 0)
		oom();
	va_end(ap);
	if (in.o != O_OK) {
		js_open(&R.findings, "{");
		js_key(&R.findings, "function"), js_str(&R.findings, fn);
		js_key(&R.findings, "outcome"), js_str(&R.findings, outcome_names[in.o]);
		js_key(&R.findings, "call"), js_str(&R.findings, call);
		js_key(&R.findings, "rv"), js_ulong(&R.findings, rv);
		js_key(&R.findings, "log"), js_str(&R.findings, in.line);
		js_close(&R.findings, "}");
		progress("robustness: %s: %s -> %s", outcome_names[in.o], call, ckr(rv));
	} else if (took >= 1) {
		progress("robustness: slow (%.1f s): %s -> %s", took, call, ckr(rv));
	}
	if (in.o == O_CRASH || in.o == O_HANG || in.o == O_LIE)
		S.up = 0; /* the host is gone, and the driver's sessions and keys with it */
	if (in.o == O_HANG) {
		hangs++;
		if (++*fn_hangs(fn) == FN_HANGS)
			err("robustness: %s hung %d times: its other calls were not made", fn, FN_HANGS);
		if (hangs - R.hangs0 >= MAX_HANGS)
			rb_stop(xfmt("%d hangs (each costs the deadline)", hangs - R.hangs0));
	}
	/* A module whose hosts keep failing to start makes every call wait
	 * out the back-off: no point in going on. */
	if (in.start_failed && ++R.start_fails >= MAX_HANGS)
		rb_stop("new hosts for the module kept failing to start");
	free(call);
	return rv;
}

#define TRY(fn, call, ...) \
	(rb_enter(fn) ? SKIPPED : (R.mark = log_size(), R.t0 = mono_us(), rb_leave(fn, (call), __VA_ARGS__)))

/* Arguments the calls share. big is a 256 MiB MAP_NORESERVE mapping: the
 * driver claims a large buffer only with the memory really behind it. */
#define BIG_LEN ((CK_ULONG)0x10000000)
#define MIB64 ((CK_ULONG)64 << 20)
#define MIB1 ((CK_ULONG)1 << 20)
/* Attribute values a module stores and copies several times get 16 MiB:
 * 64 MiB labels take SoftHSM2 2 s a call, near a short deadline. */
#define MIB16 ((CK_ULONG)16 << 20)
#define HUGE_LEN ((CK_ULONG)0x7fffffff)
#define BIG_TEMPLATE 0x2000

static unsigned char *big;
static CK_BYTE b1[1] = { 1 }, b3[3] = { 1, 2, 3 }, b4[4] = { 1, 2, 3, 4 }, zero3[3], zero8[8];
static CK_BYTE data32[32] = { 1, 2, 3, 4, 5, 6, 7, 8 }, iv16[16], junk[4096], out[4096];
static CK_ULONG n_out;
static CK_SLOT_ID bad_slot[3];
static int nbad_slot;

static void big_clean(void)
{
	if (big != NULL)
		madvise(big, BIG_LEN, MADV_DONTNEED); /* give back what a call wrote */
}

/* The invalid session handles every session function gets. */
static CK_SESSION_HANDLE bad_s(int i) { return i == 0 ? 0 : i == 1 ? 0xdeadbeef : S.closed; }
static const char *bad_sn(int i) { return i == 0 ? "0" : i == 1 ? "0xdeadbeef" : "hClosed"; }
#define EACH_BAD_SESSION(i) for (int i = 0; i < 3; i++)
#define EACH_BAD_SLOT(i) for (int i = 0; i < nbad_slot; i++)

/* The shapes of attributes that badly written modules trip over. */
struct bad_attr {
	const char *name;
	CK_ATTRIBUTE a;
};
static struct bad_attr bad_attrs[8];

/* A handle that is never valid, for tables of key pointers: the tables
 * point at S's handles, which change when a host death makes new keys. */
static CK_OBJECT_HANDLE deadbeef = 0xdeadbeef;
static int nbad_attrs;

static void rb_setup(void)
{
	static const CK_SLOT_ID cand[] = { 0, 0xdeadbeef, 0x10000 };

	for (size_t i = 0; i < sizeof cand / sizeof cand[0]; i++)
		if (!slot_listed(cand[i]))
			bad_slot[nbad_slot++] = cand[i];
	big = mmap(NULL, BIG_LEN, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (big == MAP_FAILED) {
		big = NULL;
		err("no 256 MiB mapping (%s): the calls with large real buffers are skipped", strerror(errno));
	}
	memset(junk, 0xa5, sizeof junk);
	/* Attributes of input templates: wrong sizes and types, all with
	 * real buffers. No NULL value with a length: in an input template
	 * that is a wild pointer, the caller's bug (a module may read the
	 * values it is given), not a shape any application can mean. */
	struct bad_attr b[] = {
		{ "{CKA_CLASS, b1, 1}", { CKA_CLASS, b1, 1 } },
		{ "{CKA_CLASS, zero3, 3}", { CKA_CLASS, zero3, 3 } },
		{ "{CKA_TOKEN, zero8, 8}", { CKA_TOKEN, zero8, 8 } },
		{ "{0x7fff0001, b4, 4}", { ATTR_UNKNOWN, b4, 4 } },
		{ "{CKA_LABEL, big /* 16 MiB mapping */, 0x1000000}", { CKA_LABEL, big, MIB16 } },
	};
	for (size_t i = 0; i < sizeof b / sizeof b[0]; i++)
		if (b[i].a.pValue != NULL || b[i].a.ulValueLen != MIB16)
			bad_attrs[nbad_attrs++] = b[i];
}

/* reset_work reopens hSession, dropping whatever operation a call left
 * active. */
static void reset_work(void)
{
	CK_SESSION_HANDLE h = 0;

	TRY("C_CloseSession", F->C_CloseSession(S.hw), "C_CloseSession(hSession)");
	if (TRY("C_OpenSession", open_rw(&h), "C_OpenSession(slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &hSession)") ==
	    CKR_OK)
		S.hw = h;
	else
		S.up = 0;
}

/* destroy removes an object a malformed call made after all. */
static void destroy(CK_RV rv, CK_OBJECT_HANDLE h)
{
	if (rv == CKR_OK && h != 0)
		TRY("C_DestroyObject", F->C_DestroyObject(S.hw, h), "C_DestroyObject(hSession, h /* made by the call before */)");
}

static void rb_slots(void)
{
	CK_SLOT_INFO si;
	CK_TOKEN_INFO ti;
	CK_MECHANISM_INFO mi;
	CK_ULONG n;
	CK_UTF8CHAR label[32];

	memset(label, ' ', sizeof label);
	TRY("C_GetInfo", F->C_GetInfo(NULL), "C_GetInfo(NULL)");
	TRY("C_GetSlotList", F->C_GetSlotList(CK_FALSE, NULL, NULL), "C_GetSlotList(CK_FALSE, NULL, NULL)");
	n = 0;
	TRY("C_GetSlotList", F->C_GetSlotList(CK_TRUE, (CK_SLOT_ID_PTR)out, &n), "C_GetSlotList(CK_TRUE, list, &n) with n=0");
	n = 0;
	TRY("C_GetSlotList", F->C_GetSlotList(2, NULL, &n), "C_GetSlotList(2 /* neither CK_TRUE nor CK_FALSE */, NULL, &n)");
	if (big != NULL) {
		n = BIG_LEN / sizeof(CK_SLOT_ID);
		TRY("C_GetSlotList", F->C_GetSlotList(CK_FALSE, (CK_SLOT_ID_PTR)big, &n),
		    "C_GetSlotList(CK_FALSE, list /* 256 MiB mapping */, &n) with n=0x%lx", (unsigned long)(BIG_LEN / sizeof(CK_SLOT_ID)));
		big_clean();
	}
	EACH_BAD_SLOT(i)
	TRY("C_GetSlotInfo", F->C_GetSlotInfo(bad_slot[i], &si), "C_GetSlotInfo(0x%lx, &info)", (unsigned long)bad_slot[i]);
	TRY("C_GetSlotInfo", F->C_GetSlotInfo(V.id, NULL), "C_GetSlotInfo(slot, NULL)");
	EACH_BAD_SLOT(i)
	TRY("C_GetTokenInfo", F->C_GetTokenInfo(bad_slot[i], &ti), "C_GetTokenInfo(0x%lx, &info)", (unsigned long)bad_slot[i]);
	TRY("C_GetTokenInfo", F->C_GetTokenInfo(V.id, NULL), "C_GetTokenInfo(slot, NULL)");
	EACH_BAD_SLOT(i)
	TRY("C_GetMechanismList", F->C_GetMechanismList(bad_slot[i], NULL, &n), "C_GetMechanismList(0x%lx, NULL, &n)",
	    (unsigned long)bad_slot[i]);
	TRY("C_GetMechanismList", F->C_GetMechanismList(V.id, NULL, NULL), "C_GetMechanismList(slot, NULL, NULL)");
	n = 0;
	TRY("C_GetMechanismList", F->C_GetMechanismList(V.id, (CK_MECHANISM_TYPE_PTR)out, &n),
	    "C_GetMechanismList(slot, list, &n) with n=0");
	if (big != NULL) {
		n = BIG_LEN / sizeof(CK_MECHANISM_TYPE);
		TRY("C_GetMechanismList", F->C_GetMechanismList(V.id, (CK_MECHANISM_TYPE_PTR)big, &n),
		    "C_GetMechanismList(slot, list /* 256 MiB mapping */, &n) with n=0x%lx",
		    (unsigned long)(BIG_LEN / sizeof(CK_MECHANISM_TYPE)));
		big_clean();
	}
	EACH_BAD_SLOT(i)
	TRY("C_GetMechanismInfo", F->C_GetMechanismInfo(bad_slot[i], CKM_SHA256, &mi),
	    "C_GetMechanismInfo(0x%lx, CKM_SHA256, &info)", (unsigned long)bad_slot[i]);
	TRY("C_GetMechanismInfo", F->C_GetMechanismInfo(V.id, MECH_UNKNOWN, &mi), "C_GetMechanismInfo(slot, 0x7fffff00, &info)");
	TRY("C_GetMechanismInfo", F->C_GetMechanismInfo(V.id, CKM_SHA256, NULL), "C_GetMechanismInfo(slot, CKM_SHA256, NULL)");
	/* C_InitToken only on slots the module does not list, and with no
	 * SO PIN that could be right: a module that mistook the slot would
	 * wipe a real token. */
	EACH_BAD_SLOT(i)
	TRY("C_InitToken", F->C_InitToken(bad_slot[i], NULL, 0, NULL), "C_InitToken(0x%lx, NULL, 0, NULL)",
	    (unsigned long)bad_slot[i]);
	if (nbad_slot > 0)
		TRY("C_InitToken", F->C_InitToken(bad_slot[nbad_slot - 1], NULL, HUGE_LEN, label),
		    "C_InitToken(0x%lx, NULL, 0x7fffffff, label)", (unsigned long)bad_slot[nbad_slot - 1]);
}

/* rb_pins: only invalid sessions, so that no PIN is ever set or counted
 * as a wrong try. */
static void rb_pins(void)
{
	static CK_UTF8CHAR pin8[] = "87654321";

	EACH_BAD_SESSION(i)
	TRY("C_InitPIN", F->C_InitPIN(bad_s(i), pin8, 8), "C_InitPIN(%s, \"87654321\", 8)", bad_sn(i));
	TRY("C_InitPIN", F->C_InitPIN(0xdeadbeef, NULL, HUGE_LEN), "C_InitPIN(0xdeadbeef, NULL, 0x7fffffff)");
	EACH_BAD_SESSION(i)
	TRY("C_SetPIN", F->C_SetPIN(bad_s(i), NULL, 0, NULL, 0), "C_SetPIN(%s, NULL, 0, NULL, 0)", bad_sn(i));
	TRY("C_SetPIN", F->C_SetPIN(0xdeadbeef, NULL, HUGE_LEN, NULL, HUGE_LEN),
	    "C_SetPIN(0xdeadbeef, NULL, 0x7fffffff, NULL, 0x7fffffff)");
}

static void rb_sessions(void)
{
	CK_SESSION_HANDLE h = 0;
	CK_SESSION_INFO si;
	CK_ULONG n;
	CK_RV rv;

	EACH_BAD_SLOT(i)
	TRY("C_OpenSession", F->C_OpenSession(bad_slot[i], CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &h),
	    "C_OpenSession(0x%lx, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &h)", (unsigned long)bad_slot[i]);
	TRY("C_OpenSession", F->C_OpenSession(V.id, CKF_SERIAL_SESSION, NULL, NULL, NULL),
	    "C_OpenSession(slot, CKF_SERIAL_SESSION, NULL, NULL, NULL)");
	rv = TRY("C_OpenSession", F->C_OpenSession(V.id, CKF_SERIAL_SESSION | 0x80000000UL, NULL, NULL, &h),
		 "C_OpenSession(slot, CKF_SERIAL_SESSION | 0x80000000, NULL, NULL, &h)");
	if (rv == CKR_OK)
		TRY("C_CloseSession", F->C_CloseSession(h), "C_CloseSession(h)");
	EACH_BAD_SESSION(i)
	TRY("C_CloseSession", F->C_CloseSession(bad_s(i)), "C_CloseSession(%s)", bad_sn(i));
	EACH_BAD_SLOT(i)
	TRY("C_CloseAllSessions", F->C_CloseAllSessions(bad_slot[i]), "C_CloseAllSessions(0x%lx)", (unsigned long)bad_slot[i]);
	EACH_BAD_SESSION(i)
	TRY("C_GetSessionInfo", F->C_GetSessionInfo(bad_s(i), &si), "C_GetSessionInfo(%s, &info)", bad_sn(i));
	TRY("C_GetSessionInfo", F->C_GetSessionInfo(S.hw, NULL), "C_GetSessionInfo(hSession, NULL)");

	EACH_BAD_SESSION(i)
	TRY("C_GetOperationState", F->C_GetOperationState(bad_s(i), NULL, &n), "C_GetOperationState(%s, NULL, &n)", bad_sn(i));
	TRY("C_GetOperationState", F->C_GetOperationState(S.hw, NULL, &n), "C_GetOperationState(hSession /* no operation */, NULL, &n)");
	TRY("C_GetOperationState", F->C_GetOperationState(S.hw, NULL, NULL), "C_GetOperationState(hSession, NULL, NULL)");
	CK_MECHANISM sha = { CKM_SHA256, NULL, 0 };
	if (TRY("C_DigestInit", F->C_DigestInit(S.hw, &sha), "C_DigestInit(hSession, {CKM_SHA256})") == CKR_OK) {
		n = 0;
		TRY("C_GetOperationState", F->C_GetOperationState(S.hw, out, &n),
		    "C_GetOperationState(hSession /* digesting */, buf, &n) with n=0");
		n = 1;
		TRY("C_GetOperationState", F->C_GetOperationState(S.hw, out, &n),
		    "C_GetOperationState(hSession /* digesting */, buf, &n) with n=1");
		reset_work();
	}
	EACH_BAD_SESSION(i)
	TRY("C_SetOperationState", F->C_SetOperationState(bad_s(i), junk, 16, 0, 0), "C_SetOperationState(%s, junk, 16, 0, 0)",
	    bad_sn(i));
	TRY("C_SetOperationState", F->C_SetOperationState(S.hw, NULL, HUGE_LEN, 0, 0),
	    "C_SetOperationState(hSession, NULL, 0x7fffffff, 0, 0)");
	TRY("C_SetOperationState", F->C_SetOperationState(S.hw, junk, 0, 0, 0), "C_SetOperationState(hSession, junk, 0, 0, 0)");
	TRY("C_SetOperationState", F->C_SetOperationState(S.hw, junk, sizeof junk, 0, 0),
	    "C_SetOperationState(hSession, 0xa5 x 4096, 4096, 0, 0)");
	TRY("C_SetOperationState", F->C_SetOperationState(S.hw, junk, 64, 0xdeadbeef, 0xdeadbeef),
	    "C_SetOperationState(hSession, 0xa5 x 64, 64, 0xdeadbeef, 0xdeadbeef)");
	if (big != NULL)
		TRY("C_SetOperationState", F->C_SetOperationState(S.hw, big, MIB64, 0, 0),
		    "C_SetOperationState(hSession, zeros /* 64 MiB */, 0x4000000, 0, 0)");
	reset_work();
}

/* rb_login: with VET_PIN only the right PIN is ever passed, so that
 * nothing here counts as a wrong try. */
static void rb_login(void)
{
	CK_UTF8CHAR_PTR pin = (CK_UTF8CHAR_PTR)O.pin;
	CK_ULONG len = O.pin ? strlen(O.pin) : 0;

	if (O.pin != NULL) {
		EACH_BAD_SESSION(i)
		TRY("C_Login", F->C_Login(bad_s(i), CKU_USER, pin, len), "C_Login(%s, CKU_USER, VET_PIN, len)", bad_sn(i));
		TRY("C_Login", F->C_Login(S.hw, 0x7fffffff, pin, len), "C_Login(hSession, 0x7fffffff, VET_PIN, len)");
		TRY("C_Login", F->C_Login(S.hw, CKU_CONTEXT_SPECIFIC, pin, len),
		    "C_Login(hSession, CKU_CONTEXT_SPECIFIC /* no operation */, VET_PIN, len)");
	}
	TRY("C_Login", F->C_Login(0xdeadbeef, CKU_USER, NULL, HUGE_LEN), "C_Login(0xdeadbeef, CKU_USER, NULL, 0x7fffffff)");
	EACH_BAD_SESSION(i)
	TRY("C_Logout", F->C_Logout(bad_s(i)), "C_Logout(%s)", bad_sn(i));
}

/* data_template builds {CKA_CLASS=CKO_DATA, CKA_TOKEN=CK_FALSE} with bad
 * in place of the attribute of its type, or added. */
static CK_ULONG data_template(CK_ATTRIBUTE *t, const CK_ATTRIBUTE *bad)
{
	static CK_OBJECT_CLASS data = CKO_DATA;
	CK_ULONG n = 0;

	if (bad == NULL || bad->type != CKA_CLASS)
		t[n++] = (CK_ATTRIBUTE){ CKA_CLASS, &data, sizeof data };
	if (bad == NULL || bad->type != CKA_TOKEN)
		t[n++] = (CK_ATTRIBUTE){ CKA_TOKEN, &no, 1 };
	if (bad != NULL)
		t[n++] = *bad;
	return n;
}

static void rb_create(void)
{
	CK_ATTRIBUTE t[3];
	CK_OBJECT_HANDLE h = 0;
	CK_ULONG n = data_template(t, NULL);
	CK_RV rv;

	EACH_BAD_SESSION(i)
	TRY("C_CreateObject", F->C_CreateObject(bad_s(i), t, n, &h),
	    "C_CreateObject(%s, {CKA_CLASS=CKO_DATA, CKA_TOKEN=CK_FALSE}, 2, &h)", bad_sn(i));
	TRY("C_CreateObject", F->C_CreateObject(S.hw, NULL, 3, &h), "C_CreateObject(hSession, NULL, 3, &h)");
	rv = TRY("C_CreateObject", F->C_CreateObject(S.hw, t, 0, &h), "C_CreateObject(hSession, template, 0, &h)");
	destroy(rv, h);
	TRY("C_CreateObject", F->C_CreateObject(S.hw, t, n, NULL),
	    "C_CreateObject(hSession, {CKA_CLASS=CKO_DATA, CKA_TOKEN=CK_FALSE}, 2, NULL)");
	for (int i = 0; i < nbad_attrs; i++) {
		h = 0;
		n = data_template(t, &bad_attrs[i].a);
		rv = TRY("C_CreateObject", F->C_CreateObject(S.hw, t, n, &h),
			 "C_CreateObject(hSession, {CKO_DATA, CKA_TOKEN=CK_FALSE, %s}, %lu, &h)", bad_attrs[i].name,
			 (unsigned long)n);
		destroy(rv, h);
	}
	big_clean();
}

/* target is the object the object calls work on: the AES key, else the
 * public key, else (no VET_PIN) a public data object. Its name is a function of its own, since a call and its
 * reproducer's arguments are evaluated in no set order. */
static CK_OBJECT_HANDLE target(void) { return S.aes != 0 ? S.aes : S.pub != 0 ? S.pub : S.data; }

static const char *target_name(void)
{
	return S.aes != 0 ? "hAES" : S.pub != 0 ? "hPublic" : S.data != 0 ? "hData" : "0 /* no object */";
}

static void rb_copy_destroy(void)
{
	static CK_UTF8CHAR x[] = "x";
	CK_ATTRIBUTE label = { CKA_LABEL, x, 1 };
	CK_OBJECT_HANDLE h = 0;
	CK_ULONG sz;
	CK_RV rv;

	EACH_BAD_SESSION(i)
	TRY("C_CopyObject", F->C_CopyObject(bad_s(i), target(), &label, 1, &h),
	    "C_CopyObject(%s, %s, {CKA_LABEL, \"x\", 1}, 1, &h)", bad_sn(i), target_name());
	TRY("C_CopyObject", F->C_CopyObject(S.hw, 0xdeadbeef, &label, 1, &h),
	    "C_CopyObject(hSession, 0xdeadbeef, {CKA_LABEL, \"x\", 1}, 1, &h)");
	h = 0;
	rv = TRY("C_CopyObject", F->C_CopyObject(S.hw, target(), NULL, 3, &h), "C_CopyObject(hSession, %s, NULL, 3, &h)", target_name());
	destroy(rv, h);
	TRY("C_CopyObject", F->C_CopyObject(S.hw, target(), &label, 1, NULL),
	    "C_CopyObject(hSession, %s, {CKA_LABEL, \"x\", 1}, 1, NULL)", target_name());
	for (int i = 0; i < nbad_attrs; i++) {
		h = 0;
		rv = TRY("C_CopyObject", F->C_CopyObject(S.hw, target(), &bad_attrs[i].a, 1, &h),
			 "C_CopyObject(hSession, %s, %s, 1, &h)", target_name(), bad_attrs[i].name);
		destroy(rv, h);
	}
	big_clean();
	/* Only handles the module never handed out: a module that ignored
	 * the session handle must not take the driver's keys with it. */
	EACH_BAD_SESSION(i)
	TRY("C_DestroyObject", F->C_DestroyObject(bad_s(i), 0xdeadbeef), "C_DestroyObject(%s, 0xdeadbeef)", bad_sn(i));
	TRY("C_DestroyObject", F->C_DestroyObject(S.hw, 0), "C_DestroyObject(hSession, 0)");
	TRY("C_DestroyObject", F->C_DestroyObject(S.hw, 0xdeadbeef), "C_DestroyObject(hSession, 0xdeadbeef)");
	EACH_BAD_SESSION(i)
	TRY("C_GetObjectSize", F->C_GetObjectSize(bad_s(i), target(), &sz), "C_GetObjectSize(%s, %s, &size)", bad_sn(i), target_name());
	TRY("C_GetObjectSize", F->C_GetObjectSize(S.hw, 0, &sz), "C_GetObjectSize(hSession, 0, &size)");
	TRY("C_GetObjectSize", F->C_GetObjectSize(S.hw, 0xdeadbeef, &sz), "C_GetObjectSize(hSession, 0xdeadbeef, &size)");
	TRY("C_GetObjectSize", F->C_GetObjectSize(S.hw, target(), NULL), "C_GetObjectSize(hSession, %s, NULL)", target_name());
}

/* gav_object is the object C_GetAttributeValue reads: the private key,
 * whose CKA_VALUE is sensitive, when there is one. */
static CK_OBJECT_HANDLE gav_object(void) { return S.priv != 0 ? S.priv : target(); }

static const char *gav_name(void) { return S.priv != 0 ? "hPrivate" : target_name(); }

/* rb_get_many asks for CKA_CLASS 0x2000 times in one template. */
static void rb_get_many(void)
{
	CK_ATTRIBUTE *t = xcalloc(BIG_TEMPLATE, sizeof *t);
	CK_ULONG *v = xcalloc(BIG_TEMPLATE, sizeof *v);

	for (int i = 0; i < BIG_TEMPLATE; i++)
		t[i] = (CK_ATTRIBUTE){ CKA_CLASS, &v[i], sizeof v[i] };
	TRY("C_GetAttributeValue", F->C_GetAttributeValue(S.hw, gav_object(), t, BIG_TEMPLATE),
	    "C_GetAttributeValue(hSession, %s, {CKA_CLASS, &class[i], 8} x 0x2000, 0x2000)", gav_name());
	free(t);
	free(v);
}

/* class_attr is a fresh {CKA_CLASS, &cls, 8}: an attribute a call has
 * written to holds the length the module set (CK_UNAVAILABLE_INFORMATION,
 * say), and passing it again would claim more room than cls has. */
static CK_ATTRIBUTE *class_attr(void)
{
	static CK_ULONG cls;
	static CK_ATTRIBUTE a;

	a = (CK_ATTRIBUTE){ CKA_CLASS, &cls, sizeof cls };
	return &a;
}

static void rb_get(void)
{
	CK_ATTRIBUTE nested[2] = { { CKA_CLASS, NULL, 0 }, { CKA_LABEL, out, 1 } };

	EACH_BAD_SESSION(i)
	TRY("C_GetAttributeValue", F->C_GetAttributeValue(bad_s(i), gav_object(), class_attr(), 1),
	    "C_GetAttributeValue(%s, %s, {CKA_CLASS, &class, 8}, 1)", bad_sn(i), gav_name());
	TRY("C_GetAttributeValue", F->C_GetAttributeValue(S.hw, 0xdeadbeef, class_attr(), 1),
	    "C_GetAttributeValue(hSession, 0xdeadbeef, {CKA_CLASS, &class, 8}, 1)");
	TRY("C_GetAttributeValue", F->C_GetAttributeValue(S.hw, gav_object(), NULL, 3),
	    "C_GetAttributeValue(hSession, %s, NULL, 3)", gav_name());
	TRY("C_GetAttributeValue", F->C_GetAttributeValue(S.hw, gav_object(), class_attr(), 0),
	    "C_GetAttributeValue(hSession, %s, {CKA_CLASS, &class, 8}, 0)", gav_name());
	struct {
		const char *name;
		CK_ATTRIBUTE a;
	} v[] = {
		{ "{CKA_CLASS, buf, 1}", { CKA_CLASS, out, 1 } },
		{ "{CKA_CLASS, NULL, 0x7fffffff}", { CKA_CLASS, NULL, HUGE_LEN } },
		{ "{0x7fff0001, buf, 16}", { ATTR_UNKNOWN, out, 16 } },
		{ "{CKA_VALUE, big /* 256 MiB mapping */, 0x10000000}", { CKA_VALUE, big, BIG_LEN } },
		{ "{CKA_EC_PARAMS, big /* 256 MiB mapping */, 0x10000000}", { CKA_EC_PARAMS, big, BIG_LEN } },
		{ "{CKA_LABEL, big /* 256 MiB mapping */, 0x10000000}", { CKA_LABEL, big, BIG_LEN } },
	};
	for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
		if (v[i].a.ulValueLen == BIG_LEN && big == NULL)
			continue;
		CK_ATTRIBUTE one = v[i].a;
		TRY("C_GetAttributeValue", F->C_GetAttributeValue(S.hw, gav_object(), &one, 1),
		    "C_GetAttributeValue(hSession, %s, %s, 1)", gav_name(), v[i].name);
	}
	big_clean();
	/* A nested template (CKA_WRAP_TEMPLATE of the secret key) with room
	 * for less than one attribute, and with two. */
	CK_ATTRIBUTE w = { CKA_WRAP_TEMPLATE, out, 1 };
	TRY("C_GetAttributeValue", F->C_GetAttributeValue(S.hw, target(), &w, 1),
	    "C_GetAttributeValue(hSession, %s, {CKA_WRAP_TEMPLATE, buf, 1}, 1)", target_name());
	w = (CK_ATTRIBUTE){ CKA_WRAP_TEMPLATE, nested, sizeof nested };
	TRY("C_GetAttributeValue", F->C_GetAttributeValue(S.hw, target(), &w, 1),
	    "C_GetAttributeValue(hSession, %s, {CKA_WRAP_TEMPLATE, {{CKA_CLASS, NULL, 0}, {CKA_LABEL, buf, 1}}, 2 * sizeof(CK_ATTRIBUTE)}, 1)",
	    target_name());
	rb_get_many();
}

static void rb_set(void)
{
	static CK_UTF8CHAR x[] = "x";
	CK_ATTRIBUTE label = { CKA_LABEL, x, 1 };

	EACH_BAD_SESSION(i)
	TRY("C_SetAttributeValue", F->C_SetAttributeValue(bad_s(i), target(), &label, 1),
	    "C_SetAttributeValue(%s, %s, {CKA_LABEL, \"x\", 1}, 1)", bad_sn(i), target_name());
	TRY("C_SetAttributeValue", F->C_SetAttributeValue(S.hw, 0xdeadbeef, &label, 1),
	    "C_SetAttributeValue(hSession, 0xdeadbeef, {CKA_LABEL, \"x\", 1}, 1)");
	TRY("C_SetAttributeValue", F->C_SetAttributeValue(S.hw, target(), NULL, 2), "C_SetAttributeValue(hSession, %s, NULL, 2)", target_name());
	TRY("C_SetAttributeValue", F->C_SetAttributeValue(S.hw, target(), &label, 0),
	    "C_SetAttributeValue(hSession, %s, {CKA_LABEL, \"x\", 1}, 0)", target_name());
	for (int i = 0; i < nbad_attrs; i++)
		TRY("C_SetAttributeValue", F->C_SetAttributeValue(S.hw, target(), &bad_attrs[i].a, 1),
		    "C_SetAttributeValue(hSession, %s, %s, 1)", target_name(), bad_attrs[i].name);
	big_clean();
}

/* find_init starts a search for everything; the result says whether one
 * is active. */
static int find_init(void)
{
	return TRY("C_FindObjectsInit", F->C_FindObjectsInit(S.hw, NULL, 0), "C_FindObjectsInit(hSession, NULL, 0)") == CKR_OK;
}

static void find_final(CK_RV init_rv)
{
	if (init_rv == CKR_OK)
		TRY("C_FindObjectsFinal", F->C_FindObjectsFinal(S.hw), "C_FindObjectsFinal(hSession)");
}

static void rb_find(void)
{
	CK_ULONG cls = CKO_SECRET_KEY, n;
	CK_ATTRIBUTE a = { CKA_CLASS, &cls, sizeof cls };
	CK_OBJECT_HANDLE found[4];
	CK_RV rv;

	EACH_BAD_SESSION(i)
	TRY("C_FindObjectsInit", F->C_FindObjectsInit(bad_s(i), &a, 1), "C_FindObjectsInit(%s, {CKA_CLASS, &class, 8}, 1)", bad_sn(i));
	find_final(TRY("C_FindObjectsInit", F->C_FindObjectsInit(S.hw, NULL, 3), "C_FindObjectsInit(hSession, NULL, 3)"));
	CK_ATTRIBUTE *t = xcalloc(BIG_TEMPLATE, sizeof *t);
	for (int i = 0; i < BIG_TEMPLATE; i++)
		t[i] = a;
	find_final(TRY("C_FindObjectsInit", F->C_FindObjectsInit(S.hw, t, BIG_TEMPLATE),
		       "C_FindObjectsInit(hSession, {CKA_CLASS, &class, 8} x 0x2000, 0x2000)"));
	free(t);
	for (int i = 0; i < nbad_attrs; i++)
		find_final(TRY("C_FindObjectsInit", F->C_FindObjectsInit(S.hw, &bad_attrs[i].a, 1),
			       "C_FindObjectsInit(hSession, %s, 1)", bad_attrs[i].name));

	EACH_BAD_SESSION(i)
	TRY("C_FindObjects", F->C_FindObjects(bad_s(i), found, 4, &n), "C_FindObjects(%s, found, 4, &n)", bad_sn(i));
	TRY("C_FindObjects", F->C_FindObjects(S.hw, found, 4, &n), "C_FindObjects(hSession /* no search */, found, 4, &n)");
	rv = find_init() ? CKR_OK : SKIPPED;
	if (rv == CKR_OK) {
		TRY("C_FindObjects", F->C_FindObjects(S.hw, NULL, 4, &n), "C_FindObjects(hSession, NULL, 4, &n)");
		TRY("C_FindObjects", F->C_FindObjects(S.hw, found, 0, &n), "C_FindObjects(hSession, found, 0, &n)");
		TRY("C_FindObjects", F->C_FindObjects(S.hw, found, 4, NULL), "C_FindObjects(hSession, found, 4, NULL)");
		if (big != NULL)
			TRY("C_FindObjects", F->C_FindObjects(S.hw, (CK_OBJECT_HANDLE_PTR)big, BIG_LEN / sizeof(CK_OBJECT_HANDLE), &n),
			    "C_FindObjects(hSession, found /* 256 MiB mapping */, 0x%lx, &n)",
			    (unsigned long)(BIG_LEN / sizeof(CK_OBJECT_HANDLE)));
		big_clean();
		find_final(rv);
	}
	EACH_BAD_SESSION(i)
	TRY("C_FindObjectsFinal", F->C_FindObjectsFinal(bad_s(i)), "C_FindObjectsFinal(%s)", bad_sn(i));
	TRY("C_FindObjectsFinal", F->C_FindObjectsFinal(S.hw), "C_FindObjectsFinal(hSession /* no search */)");
}

/* ------------------------------------------------------------------ */
/* Robustness: the cryptographic functions                             */

/* One kind of operation: its functions, a mechanism and key it works
 * with, and a key of the wrong type. */
struct op {
	const char *init_name, *one_name, *upd_name, *fin_name;
	CK_RV (*init)(CK_SESSION_HANDLE, CK_MECHANISM_PTR, CK_OBJECT_HANDLE);
	CK_RV (*one)(CK_SESSION_HANDLE, CK_BYTE_PTR, CK_ULONG, CK_BYTE_PTR, CK_ULONG_PTR);
	CK_RV (*upd_out)(CK_SESSION_HANDLE, CK_BYTE_PTR, CK_ULONG, CK_BYTE_PTR, CK_ULONG_PTR);
	CK_RV (*upd)(CK_SESSION_HANDLE, CK_BYTE_PTR, CK_ULONG);
	CK_RV (*fin)(CK_SESSION_HANDLE, CK_BYTE_PTR, CK_ULONG_PTR);
	CK_MECHANISM mech, multi; /* multi: for the multi-part calls */
	const char *mech_name, *multi_name;
	CK_OBJECT_HANDLE *key, *wrong_key; /* NULL: the operation takes no key */
	const char *key_name, *wrong_name;
};

static CK_RV digest_init(CK_SESSION_HANDLE h, CK_MECHANISM_PTR m, CK_OBJECT_HANDLE k)
{
	(void)k;
	return F->C_DigestInit(h, m);
}

static CK_OBJECT_HANDLE key_of(CK_OBJECT_HANDLE *k) { return k != NULL ? *k : 0; }

/* op_start reopens hSession and starts the operation (multi-part when
 * multi): whether it is active. */
static int op_start(const struct op *o, int multi)
{
	CK_MECHANISM m = multi ? o->multi : o->mech;

	reset_work();
	return TRY(o->init_name, o->init(S.hw, &m, key_of(o->key)), "%s(hSession, %s, %s)", o->init_name,
		   multi ? o->multi_name : o->mech_name, o->key ? o->key_name : "-") == CKR_OK;
}

static void op_init_variants(const struct op *o)
{
	const char *k = o->key ? o->key_name : "-";
	CK_OBJECT_HANDLE key = key_of(o->key);
	struct {
		const char *name;
		CK_MECHANISM m;
	} v[] = {
		{ "{0x7fffff00, NULL, 0}", { MECH_UNKNOWN, NULL, 0 } },
		{ xfmt("{%s, b3, 3}", o->mech_name), { o->mech.mechanism, b3, 3 } },
		{ xfmt("{%s, NULL, 16}", o->mech_name), { o->mech.mechanism, NULL, 16 } },
		{ "{CKM_AES_GCM, b1, 1}", { CKM_AES_GCM, b1, 1 } },
		{ "{CKM_RSA_PKCS_PSS, b3, 3}", { CKM_RSA_PKCS_PSS, b3, 3 } },
		{ "{CKM_AES_CBC, NULL, 16}", { CKM_AES_CBC, NULL, 16 } },
	};
	CK_MECHANISM m = o->mech;

	EACH_BAD_SESSION(i)
	TRY(o->init_name, o->init(bad_s(i), &m, key_of(o->key)), "%s(%s, %s, %s)", o->init_name, bad_sn(i), o->mech_name, k);
	if (TRY(o->init_name, o->init(S.hw, NULL, key_of(o->key)), "%s(hSession, NULL, %s)", o->init_name, k) == CKR_OK)
		reset_work();
	for (size_t i = 0; i < sizeof v / sizeof v[0]; i++)
		if (TRY(o->init_name, o->init(S.hw, &v[i].m, key), "%s(hSession, %s, %s)", o->init_name, v[i].name, k) == CKR_OK)
			reset_work();
	if (o->key == NULL)
		return;
	if (TRY(o->init_name, o->init(S.hw, &m, 0xdeadbeef), "%s(hSession, %s, 0xdeadbeef)", o->init_name, o->mech_name) == CKR_OK)
		reset_work();
	if (TRY(o->init_name, o->init(S.hw, &m, key_of(o->wrong_key)), "%s(hSession, %s, %s /* wrong type */)", o->init_name,
		o->mech_name, o->wrong_name) == CKR_OK)
		reset_work();
}

/* op_out_variants: a single-part call, or an update that has output. */
static void op_out_variants(const struct op *o, const char *fn,
			    CK_RV (*call)(CK_SESSION_HANDLE, CK_BYTE_PTR, CK_ULONG, CK_BYTE_PTR, CK_ULONG_PTR), int multi)
{
	EACH_BAD_SESSION(i)
	{
		n_out = sizeof out;
		TRY(fn, call(bad_s(i), data32, 16, out, &n_out), "%s(%s, data, 16, out, &n)", fn, bad_sn(i));
	}
	n_out = sizeof out;
	reset_work();
	TRY(fn, call(S.hw, data32, 16, out, &n_out), "%s(hSession /* no operation */, data, 16, out, &n)", fn);
	if (op_start(o, multi)) {
		n_out = sizeof out;
		TRY(fn, call(S.hw, NULL, HUGE_LEN, out, &n_out), "%s(hSession, NULL, 0x7fffffff, out, &n)", fn);
	}
	if (op_start(o, multi)) {
		n_out = sizeof out;
		TRY(fn, call(S.hw, data32, 0, out, &n_out), "%s(hSession, data, 0, out, &n)", fn);
	}
	if (big != NULL && op_start(o, multi)) {
		n_out = 0;
		TRY(fn, call(S.hw, big, MIB64, NULL, &n_out), "%s(hSession, zeros /* 64 MiB */, 0x4000000, NULL, &n)", fn);
	}
	if (big != NULL && op_start(o, multi)) {
		n_out = sizeof out;
		TRY(fn, call(S.hw, big, MIB64, out, &n_out), "%s(hSession, zeros /* 64 MiB */, 0x4000000, out, &n) with n=4096", fn);
	}
	if (op_start(o, multi))
		TRY(fn, call(S.hw, data32, 16, out, NULL), "%s(hSession, data, 16, out, NULL)", fn);
	if (op_start(o, multi))
		TRY(fn, call(S.hw, data32, 16, NULL, NULL), "%s(hSession, data, 16, NULL, NULL)", fn);
	if (op_start(o, multi)) {
		n_out = 0;
		TRY(fn, call(S.hw, data32, 16, out, &n_out), "%s(hSession, data, 16, out, &n) with n=0", fn);
	}
	if (big != NULL && op_start(o, multi)) {
		n_out = BIG_LEN;
		TRY(fn, call(S.hw, data32, 16, big, &n_out), "%s(hSession, data, 16, out /* 256 MiB mapping */, &n) with n=0x10000000",
		    fn);
	}
	big_clean();
}

/* op_update_variants: an update without output (digest, sign, verify). */
static void op_update_variants(const struct op *o)
{
	const char *fn = o->upd_name;

	EACH_BAD_SESSION(i)
	TRY(fn, o->upd(bad_s(i), data32, 16), "%s(%s, data, 16)", fn, bad_sn(i));
	reset_work();
	TRY(fn, o->upd(S.hw, data32, 16), "%s(hSession /* no operation */, data, 16)", fn);
	if (op_start(o, 1))
		TRY(fn, o->upd(S.hw, NULL, HUGE_LEN), "%s(hSession, NULL, 0x7fffffff)", fn);
	if (op_start(o, 1))
		TRY(fn, o->upd(S.hw, data32, 0), "%s(hSession, data, 0)", fn);
	if (big != NULL && op_start(o, 1))
		TRY(fn, o->upd(S.hw, big, MIB64), "%s(hSession, zeros /* 64 MiB */, 0x4000000)", fn);
}

static void op_final_variants(const struct op *o)
{
	const char *fn = o->fin_name;

	EACH_BAD_SESSION(i)
	{
		n_out = sizeof out;
		TRY(fn, o->fin(bad_s(i), out, &n_out), "%s(%s, out, &n)", fn, bad_sn(i));
	}
	reset_work();
	n_out = sizeof out;
	TRY(fn, o->fin(S.hw, out, &n_out), "%s(hSession /* no operation */, out, &n)", fn);
	if (op_start(o, 1))
		TRY(fn, o->fin(S.hw, NULL, NULL), "%s(hSession, NULL, NULL)", fn);
	if (op_start(o, 1)) {
		n_out = 0;
		TRY(fn, o->fin(S.hw, out, &n_out), "%s(hSession, out, &n) with n=0", fn);
	}
	if (op_start(o, 1)) {
		n_out = 0;
		TRY(fn, o->fin(S.hw, NULL, &n_out), "%s(hSession, NULL, &n)", fn);
	}
}

static void rb_op(const struct op *o)
{
	op_init_variants(o);
	if (o->one != NULL)
		op_out_variants(o, o->one_name, o->one, 0);
	if (o->upd_out != NULL)
		op_out_variants(o, o->upd_name, o->upd_out, 1);
	if (o->upd != NULL)
		op_update_variants(o);
	if (o->fin != NULL)
		op_final_variants(o);
	reset_work();
}

/* rb_verify: C_Verify and C_VerifyFinal take the signature as input. */
static void rb_verify(const struct op *o)
{
	CK_BYTE sig[64] = { 0 };

	op_init_variants(o);
	EACH_BAD_SESSION(i)
	TRY("C_Verify", F->C_Verify(bad_s(i), data32, 32, sig, 64), "C_Verify(%s, data, 32, sig, 64)", bad_sn(i));
	reset_work();
	TRY("C_Verify", F->C_Verify(S.hw, data32, 32, sig, 64), "C_Verify(hSession /* no operation */, data, 32, sig, 64)");
	if (op_start(o, 0))
		TRY("C_Verify", F->C_Verify(S.hw, data32, 32, NULL, HUGE_LEN), "C_Verify(hSession, data, 32, NULL, 0x7fffffff)");
	if (op_start(o, 0))
		TRY("C_Verify", F->C_Verify(S.hw, data32, 32, sig, 0), "C_Verify(hSession, data, 32, sig, 0)");
	if (op_start(o, 0))
		TRY("C_Verify", F->C_Verify(S.hw, NULL, HUGE_LEN, sig, 64), "C_Verify(hSession, NULL, 0x7fffffff, sig, 64)");
	if (big != NULL && op_start(o, 0))
		TRY("C_Verify", F->C_Verify(S.hw, big, MIB64, sig, 64), "C_Verify(hSession, zeros /* 64 MiB */, 0x4000000, sig, 64)");
	if (big != NULL && op_start(o, 0))
		TRY("C_Verify", F->C_Verify(S.hw, data32, 32, big, MIB64), "C_Verify(hSession, data, 32, zeros /* 64 MiB */, 0x4000000)");
	op_update_variants(o);
	EACH_BAD_SESSION(i)
	TRY("C_VerifyFinal", F->C_VerifyFinal(bad_s(i), sig, 64), "C_VerifyFinal(%s, sig, 64)", bad_sn(i));
	reset_work();
	TRY("C_VerifyFinal", F->C_VerifyFinal(S.hw, sig, 64), "C_VerifyFinal(hSession /* no operation */, sig, 64)");
	if (op_start(o, 1))
		TRY("C_VerifyFinal", F->C_VerifyFinal(S.hw, NULL, HUGE_LEN), "C_VerifyFinal(hSession, NULL, 0x7fffffff)");
	if (op_start(o, 1))
		TRY("C_VerifyFinal", F->C_VerifyFinal(S.hw, sig, 0), "C_VerifyFinal(hSession, sig, 0)");
	if (big != NULL && op_start(o, 1))
		TRY("C_VerifyFinal", F->C_VerifyFinal(S.hw, big, MIB64), "C_VerifyFinal(hSession, zeros /* 64 MiB */, 0x4000000)");
	reset_work();
}

static void rb_digest_key(void)
{
	CK_MECHANISM sha = { CKM_SHA256, NULL, 0 };

	EACH_BAD_SESSION(i)
	TRY("C_DigestKey", F->C_DigestKey(bad_s(i), target()), "C_DigestKey(%s, %s)", bad_sn(i), target_name());
	reset_work();
	TRY("C_DigestKey", F->C_DigestKey(S.hw, target()), "C_DigestKey(hSession /* no operation */, %s)", target_name());
	static CK_OBJECT_HANDLE zero = 0;
	CK_OBJECT_HANDLE *keys[] = { &zero, &deadbeef, &S.priv, &S.aes };
	const char *names[] = { "0", "0xdeadbeef", "hPrivate", "hAES" };
	for (int i = 0; i < 4; i++) {
		reset_work();
		if (TRY("C_DigestInit", F->C_DigestInit(S.hw, &sha), "C_DigestInit(hSession, {CKM_SHA256})") == CKR_OK)
			TRY("C_DigestKey", F->C_DigestKey(S.hw, *keys[i]), "C_DigestKey(hSession, %s)", names[i]);
	}
	reset_work();
}

static struct op op_encrypt, op_decrypt, op_digest, op_sign, op_sign_recover, op_verify, op_verify_recover;

static void ops_setup(void)
{
	CK_MECHANISM cbc = { CKM_AES_CBC_PAD, iv16, sizeof iv16 }, sha = { CKM_SHA256, NULL, 0 };
	CK_MECHANISM ecdsa = { CKM_ECDSA, NULL, 0 }, ecdsa_multi = ecdsa;
	const char *multi_name = "{CKM_ECDSA}";

	if (has_mech(CKM_ECDSA_SHA256)) {
		ecdsa_multi.mechanism = CKM_ECDSA_SHA256;
		multi_name = "{CKM_ECDSA_SHA256}";
	}
	op_encrypt = (struct op){ "C_EncryptInit", "C_Encrypt", "C_EncryptUpdate", "C_EncryptFinal",
				  F->C_EncryptInit, F->C_Encrypt, F->C_EncryptUpdate, NULL, F->C_EncryptFinal,
				  cbc, cbc, "{CKM_AES_CBC_PAD, iv, 16}", "{CKM_AES_CBC_PAD, iv, 16}",
				  &S.aes, &S.priv, "hAES", "hPrivate" };
	op_decrypt = (struct op){ "C_DecryptInit", "C_Decrypt", "C_DecryptUpdate", "C_DecryptFinal",
				  F->C_DecryptInit, F->C_Decrypt, F->C_DecryptUpdate, NULL, F->C_DecryptFinal,
				  cbc, cbc, "{CKM_AES_CBC_PAD, iv, 16}", "{CKM_AES_CBC_PAD, iv, 16}",
				  &S.aes, &S.priv, "hAES", "hPrivate" };
	op_digest = (struct op){ "C_DigestInit", "C_Digest", "C_DigestUpdate", "C_DigestFinal",
				 digest_init, F->C_Digest, NULL, F->C_DigestUpdate, F->C_DigestFinal,
				 sha, sha, "{CKM_SHA256}", "{CKM_SHA256}", NULL, NULL, NULL, NULL };
	op_sign = (struct op){ "C_SignInit", "C_Sign", "C_SignUpdate", "C_SignFinal",
			       F->C_SignInit, F->C_Sign, NULL, F->C_SignUpdate, F->C_SignFinal,
			       ecdsa, ecdsa_multi, "{CKM_ECDSA}", multi_name, &S.priv, &S.aes, "hPrivate", "hAES" };
	op_sign_recover = (struct op){ "C_SignRecoverInit", "C_SignRecover", NULL, NULL,
				       F->C_SignRecoverInit, F->C_SignRecover, NULL, NULL, NULL,
				       ecdsa, ecdsa, "{CKM_ECDSA}", "{CKM_ECDSA}", &S.priv, &S.aes, "hPrivate", "hAES" };
	op_verify = (struct op){ "C_VerifyInit", NULL, "C_VerifyUpdate", NULL,
				 F->C_VerifyInit, NULL, NULL, F->C_VerifyUpdate, NULL,
				 ecdsa, ecdsa_multi, "{CKM_ECDSA}", multi_name, &S.pub, &S.aes, "hPublic", "hAES" };
	op_verify_recover = (struct op){ "C_VerifyRecoverInit", "C_VerifyRecover", NULL, NULL,
					 F->C_VerifyRecoverInit, F->C_VerifyRecover, NULL, NULL, NULL,
					 ecdsa, ecdsa, "{CKM_ECDSA}", "{CKM_ECDSA}", &S.pub, &S.aes, "hPublic", "hAES" };
}

/* rb_dual: the dual-function updates, with no operation and with both of
 * their operations active. */
static void rb_dual(void)
{
	struct {
		const char *fn;
		CK_RV (*call)(CK_SESSION_HANDLE, CK_BYTE_PTR, CK_ULONG, CK_BYTE_PTR, CK_ULONG_PTR);
		const struct op *a, *b;
	} d[] = {
		{ "C_DigestEncryptUpdate", F->C_DigestEncryptUpdate, &op_digest, &op_encrypt },
		{ "C_DecryptDigestUpdate", F->C_DecryptDigestUpdate, &op_decrypt, &op_digest },
		{ "C_SignEncryptUpdate", F->C_SignEncryptUpdate, &op_sign, &op_encrypt },
		{ "C_DecryptVerifyUpdate", F->C_DecryptVerifyUpdate, &op_decrypt, &op_verify },
	};

	for (size_t k = 0; k < sizeof d / sizeof d[0]; k++) {
		const char *fn = d[k].fn;
		EACH_BAD_SESSION(i)
		{
			n_out = sizeof out;
			TRY(fn, d[k].call(bad_s(i), data32, 16, out, &n_out), "%s(%s, data, 16, out, &n)", fn, bad_sn(i));
		}
		reset_work();
		n_out = sizeof out;
		TRY(fn, d[k].call(S.hw, data32, 16, out, &n_out), "%s(hSession /* no operation */, data, 16, out, &n)", fn);
		for (int v = 0; v < 3; v++) {
			if (!op_start(d[k].a, 1))
				continue;
			CK_MECHANISM m = d[k].b->multi;
			if (TRY(d[k].b->init_name, d[k].b->init(S.hw, &m, key_of(d[k].b->key)), "%s(hSession, %s, %s)",
				d[k].b->init_name, d[k].b->multi_name, d[k].b->key ? d[k].b->key_name : "-") != CKR_OK)
				continue;
			const char *both = xfmt("%s and %s active", d[k].a->init_name + 2, d[k].b->init_name + 2);
			n_out = sizeof out;
			if (v == 0)
				TRY(fn, d[k].call(S.hw, NULL, HUGE_LEN, out, &n_out), "%s(hSession /* %s */, NULL, 0x7fffffff, out, &n)",
				    fn, both);
			else if (v == 1 && big != NULL)
				TRY(fn, d[k].call(S.hw, big, MIB64, NULL, &n_out),
				    "%s(hSession /* %s */, zeros /* 64 MiB */, 0x4000000, NULL, &n)", fn, both);
			else if (v == 2)
				TRY(fn, d[k].call(S.hw, data32, 16, out, NULL), "%s(hSession /* %s */, data, 16, out, NULL)", fn, both);
		}
		big_clean();
	}
	reset_work();
}

static void rb_crypto(void)
{
	ops_setup();
	rb_op(&op_encrypt);
	rb_op(&op_decrypt);
	rb_op(&op_digest);
	rb_digest_key();
	rb_op(&op_sign);
	rb_op(&op_sign_recover);
	rb_verify(&op_verify);
	rb_op(&op_verify_recover);
	rb_dual();
}

/* ------------------------------------------------------------------ */
/* Robustness: keys, random numbers, the rest                          */

/* key_template builds {CKA_TOKEN=CK_FALSE, CKA_VALUE_LEN=32} (an AES key's
 * generation template) with bad in place of its type's attribute, or
 * added. */
static CK_ULONG key_template(CK_ATTRIBUTE *t, const CK_ATTRIBUTE *bad)
{
	static CK_ULONG len32 = 32;
	CK_ULONG n = 0;

	if (bad == NULL || bad->type != CKA_TOKEN)
		t[n++] = (CK_ATTRIBUTE){ CKA_TOKEN, &no, 1 };
	if (bad == NULL || bad->type != CKA_VALUE_LEN)
		t[n++] = (CK_ATTRIBUTE){ CKA_VALUE_LEN, &len32, sizeof len32 };
	if (bad != NULL)
		t[n++] = *bad;
	return n;
}

static void rb_generate_key(void)
{
	CK_MECHANISM gen = { CKM_AES_KEY_GEN, NULL, 0 };
	CK_ATTRIBUTE t[3];
	CK_OBJECT_HANDLE h = 0;
	CK_ULONG n = key_template(t, NULL);
	const char *tmpl = "{CKA_TOKEN=CK_FALSE, CKA_VALUE_LEN=32}";
	CK_RV rv;

	EACH_BAD_SESSION(i)
	TRY("C_GenerateKey", F->C_GenerateKey(bad_s(i), &gen, t, n, &h), "C_GenerateKey(%s, {CKM_AES_KEY_GEN}, %s, 2, &h)",
	    bad_sn(i), tmpl);
	struct {
		const char *name;
		CK_MECHANISM m;
	} mv[] = {
		{ "{0x7fffff00, NULL, 0}", { MECH_UNKNOWN, NULL, 0 } },
		{ "{CKM_AES_KEY_GEN, b1, 1}", { CKM_AES_KEY_GEN, b1, 1 } },
		{ "{CKM_AES_KEY_GEN, NULL, 16}", { CKM_AES_KEY_GEN, NULL, 16 } },
	};
	h = 0;
	rv = TRY("C_GenerateKey", F->C_GenerateKey(S.hw, NULL, t, n, &h), "C_GenerateKey(hSession, NULL, %s, 2, &h)", tmpl);
	destroy(rv, h);
	for (size_t i = 0; i < sizeof mv / sizeof mv[0]; i++) {
		h = 0;
		rv = TRY("C_GenerateKey", F->C_GenerateKey(S.hw, &mv[i].m, t, n, &h), "C_GenerateKey(hSession, %s, %s, 2, &h)",
			 mv[i].name, tmpl);
		destroy(rv, h);
	}
	h = 0;
	rv = TRY("C_GenerateKey", F->C_GenerateKey(S.hw, &gen, NULL, 3, &h), "C_GenerateKey(hSession, {CKM_AES_KEY_GEN}, NULL, 3, &h)");
	destroy(rv, h);
	TRY("C_GenerateKey", F->C_GenerateKey(S.hw, &gen, t, n, NULL), "C_GenerateKey(hSession, {CKM_AES_KEY_GEN}, %s, 2, NULL)", tmpl);
	struct bad_attr vl[] = {
		{ "{CKA_VALUE_LEN, b1, 1}", { CKA_VALUE_LEN, b1, 1 } },
		{ "{CKA_VALUE_LEN, zero3, 3}", { CKA_VALUE_LEN, zero3, 3 } },
	};
	int nvl = (int)(sizeof vl / sizeof vl[0]);
	for (int i = 0; i < nvl + nbad_attrs; i++) {
		const struct bad_attr *b = i < nvl ? &vl[i] : &bad_attrs[i - nvl];
		h = 0;
		n = key_template(t, &b->a);
		rv = TRY("C_GenerateKey", F->C_GenerateKey(S.hw, &gen, t, n, &h),
			 "C_GenerateKey(hSession, {CKM_AES_KEY_GEN}, {CKA_TOKEN=CK_FALSE, CKA_VALUE_LEN=32, %s}, %lu, &h)", b->name,
			 (unsigned long)n);
		destroy(rv, h);
	}
	big_clean();
}

static void destroy_pair(CK_RV rv, CK_OBJECT_HANDLE a, CK_OBJECT_HANDLE b)
{
	destroy(rv, a);
	destroy(rv, b);
}

static void rb_generate_key_pair(void)
{
	CK_MECHANISM gen = { CKM_EC_KEY_PAIR_GEN, NULL, 0 }, unknown = { MECH_UNKNOWN, NULL, 0 };
	CK_MECHANISM rsa = { CKM_RSA_PKCS_KEY_PAIR_GEN, NULL, 0 };
	CK_ATTRIBUTE pub[3] = { { CKA_TOKEN, &no, 1 }, { CKA_EC_PARAMS, p256, sizeof p256 } };
	CK_ATTRIBUTE priv[1] = { { CKA_TOKEN, &no, 1 } };
	CK_OBJECT_HANDLE a = 0, b = 0;
	const char *pt = "{CKA_TOKEN=CK_FALSE, CKA_EC_PARAMS=P-256}", *vt = "{CKA_TOKEN=CK_FALSE}";
	CK_RV rv;

	EACH_BAD_SESSION(i)
	TRY("C_GenerateKeyPair", F->C_GenerateKeyPair(bad_s(i), &gen, pub, 2, priv, 1, &a, &b),
	    "C_GenerateKeyPair(%s, {CKM_EC_KEY_PAIR_GEN}, %s, 2, %s, 1, &pub, &priv)", bad_sn(i), pt, vt);
	a = b = 0;
	rv = TRY("C_GenerateKeyPair", F->C_GenerateKeyPair(S.hw, NULL, pub, 2, priv, 1, &a, &b),
		 "C_GenerateKeyPair(hSession, NULL, %s, 2, %s, 1, &pub, &priv)", pt, vt);
	destroy_pair(rv, a, b);
	a = b = 0;
	rv = TRY("C_GenerateKeyPair", F->C_GenerateKeyPair(S.hw, &unknown, pub, 2, priv, 1, &a, &b),
		 "C_GenerateKeyPair(hSession, {0x7fffff00}, %s, 2, %s, 1, &pub, &priv)", pt, vt);
	destroy_pair(rv, a, b);
	a = b = 0;
	rv = TRY("C_GenerateKeyPair", F->C_GenerateKeyPair(S.hw, &gen, NULL, 2, NULL, 1, &a, &b),
		 "C_GenerateKeyPair(hSession, {CKM_EC_KEY_PAIR_GEN}, NULL, 2, NULL, 1, &pub, &priv)");
	destroy_pair(rv, a, b);
	TRY("C_GenerateKeyPair", F->C_GenerateKeyPair(S.hw, &gen, pub, 2, priv, 1, NULL, NULL),
	    "C_GenerateKeyPair(hSession, {CKM_EC_KEY_PAIR_GEN}, %s, 2, %s, 1, NULL, NULL)", pt, vt);
	struct bad_attr ep[] = {
		{ "{CKA_EC_PARAMS, b3, 3}", { CKA_EC_PARAMS, b3, 3 } },
		{ "{CKA_EC_PARAMS, 0xa5 x 4096, 4096}", { CKA_EC_PARAMS, junk, sizeof junk } },
	};
	for (size_t i = 0; i < sizeof ep / sizeof ep[0]; i++) {
		pub[1] = ep[i].a;
		a = b = 0;
		rv = TRY("C_GenerateKeyPair", F->C_GenerateKeyPair(S.hw, &gen, pub, 2, priv, 1, &a, &b),
			 "C_GenerateKeyPair(hSession, {CKM_EC_KEY_PAIR_GEN}, {CKA_TOKEN=CK_FALSE, %s}, 2, %s, 1, &pub, &priv)",
			 ep[i].name, vt);
		destroy_pair(rv, a, b);
	}
	pub[1] = (CK_ATTRIBUTE){ CKA_EC_PARAMS, p256, sizeof p256 };
	for (int i = 0; i < nbad_attrs; i++) {
		CK_ULONG n = 2;
		if (bad_attrs[i].a.type == CKA_TOKEN)
			pub[0] = bad_attrs[i].a, n = 2;
		else
			pub[2] = bad_attrs[i].a, n = 3;
		a = b = 0;
		rv = TRY("C_GenerateKeyPair", F->C_GenerateKeyPair(S.hw, &gen, pub, n, priv, 1, &a, &b),
			 "C_GenerateKeyPair(hSession, {CKM_EC_KEY_PAIR_GEN}, {CKA_TOKEN=CK_FALSE, CKA_EC_PARAMS=P-256, %s}, %lu, %s, 1, &pub, &priv)",
			 bad_attrs[i].name, (unsigned long)n, vt);
		destroy_pair(rv, a, b);
		pub[0] = (CK_ATTRIBUTE){ CKA_TOKEN, &no, 1 };
	}
	big_clean();
	/* CKA_MODULUS_BITS of 3 zero bytes: a module that reads it anyway
	 * reads 0 bits, not a key size that would take hours. */
	struct bad_attr mb[] = {
		{ "{CKA_MODULUS_BITS, zero3, 3}", { CKA_MODULUS_BITS, zero3, 3 } },
	};
	for (size_t i = 0; i < sizeof mb / sizeof mb[0]; i++) {
		CK_ATTRIBUTE rpub[2] = { { CKA_TOKEN, &no, 1 }, mb[i].a };
		a = b = 0;
		rv = TRY("C_GenerateKeyPair", F->C_GenerateKeyPair(S.hw, &rsa, rpub, 2, priv, 1, &a, &b),
			 "C_GenerateKeyPair(hSession, {CKM_RSA_PKCS_KEY_PAIR_GEN}, {CKA_TOKEN=CK_FALSE, %s}, 2, %s, 1, &pub, &priv)",
			 mb[i].name, vt);
		destroy_pair(rv, a, b);
	}
}

static void rb_wrap(void)
{
	CK_MECHANISM wrap = { CKM_AES_KEY_WRAP, NULL, 0 }, unknown = { MECH_UNKNOWN, NULL, 0 };
	CK_MECHANISM wrap3 = { CKM_AES_KEY_WRAP, b3, 3 };
	CK_ULONG n;

	EACH_BAD_SESSION(i)
	{
		n = sizeof out;
		TRY("C_WrapKey", F->C_WrapKey(bad_s(i), &wrap, S.aes, S.aes, out, &n),
		    "C_WrapKey(%s, {CKM_AES_KEY_WRAP}, hAES, hAES, out, &n)", bad_sn(i));
	}
	struct {
		const char *call;
		CK_MECHANISM *m;
		CK_OBJECT_HANDLE *wk, *k;
		CK_BYTE *o;
		CK_ULONG room;
		int null_len;
	} v[] = {
		{ "C_WrapKey(hSession, NULL, hAES, hAES, out, &n)", NULL, &S.aes, &S.aes, out, sizeof out, 0 },
		{ "C_WrapKey(hSession, {0x7fffff00}, hAES, hAES, out, &n)", &unknown, &S.aes, &S.aes, out, sizeof out, 0 },
		{ "C_WrapKey(hSession, {CKM_AES_KEY_WRAP, b3, 3}, hAES, hAES, out, &n)", &wrap3, &S.aes, &S.aes, out, sizeof out, 0 },
		{ "C_WrapKey(hSession, {CKM_AES_KEY_WRAP}, 0xdeadbeef, hAES, out, &n)", &wrap, &deadbeef, &S.aes, out, sizeof out, 0 },
		{ "C_WrapKey(hSession, {CKM_AES_KEY_WRAP}, hAES, 0xdeadbeef, out, &n)", &wrap, &S.aes, &deadbeef, out, sizeof out, 0 },
		{ "C_WrapKey(hSession, {CKM_AES_KEY_WRAP}, hAES, hPrivate /* unextractable */, out, &n)", &wrap, &S.aes, &S.priv, out,
		  sizeof out, 0 },
		{ "C_WrapKey(hSession, {CKM_AES_KEY_WRAP}, hAES, hAES, NULL, NULL)", &wrap, &S.aes, &S.aes, NULL, 0, 1 },
		{ "C_WrapKey(hSession, {CKM_AES_KEY_WRAP}, hAES, hAES, out, &n) with n=1", &wrap, &S.aes, &S.aes, out, 1, 0 },
		{ "C_WrapKey(hSession, {CKM_AES_KEY_WRAP}, hPublic /* wrong type */, hAES, out, &n)", &wrap, &S.pub, &S.aes, out,
		  sizeof out, 0 },
	};
	for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
		n = v[i].room;
		TRY("C_WrapKey", F->C_WrapKey(S.hw, v[i].m, *v[i].wk, *v[i].k, v[i].o, v[i].null_len ? NULL : &n), "%s", v[i].call);
	}
}

static void rb_unwrap(void)
{
	static CK_OBJECT_CLASS secret = CKO_SECRET_KEY;
	static CK_KEY_TYPE aes = CKK_AES;
	CK_MECHANISM wrap = { CKM_AES_KEY_WRAP, NULL, 0 }, unknown = { MECH_UNKNOWN, NULL, 0 };
	CK_ATTRIBUTE t[4] = { { CKA_CLASS, &secret, sizeof secret }, { CKA_KEY_TYPE, &aes, sizeof aes }, { CKA_TOKEN, &no, 1 } };
	const char *tn = "{CKA_CLASS=CKO_SECRET_KEY, CKA_KEY_TYPE=CKK_AES, CKA_TOKEN=CK_FALSE}";
	CK_OBJECT_HANDLE h = 0;
	CK_RV rv;

	EACH_BAD_SESSION(i)
	TRY("C_UnwrapKey", F->C_UnwrapKey(bad_s(i), &wrap, S.aes, junk, 40, t, 3, &h),
	    "C_UnwrapKey(%s, {CKM_AES_KEY_WRAP}, hAES, junk, 40, %s, 3, &h)", bad_sn(i), tn);
	struct {
		const char *call;
		CK_MECHANISM *m;
		CK_OBJECT_HANDLE *k;
		CK_BYTE *in;
		CK_ULONG len;
		CK_ATTRIBUTE *t;
		int null_h;
	} v[] = {
		{ "C_UnwrapKey(hSession, NULL, hAES, junk, 40, template, 3, &h)", NULL, &S.aes, junk, 40, t, 0 },
		{ "C_UnwrapKey(hSession, {0x7fffff00}, hAES, junk, 40, template, 3, &h)", &unknown, &S.aes, junk, 40, t, 0 },
		{ "C_UnwrapKey(hSession, {CKM_AES_KEY_WRAP}, 0xdeadbeef, junk, 40, template, 3, &h)", &wrap, &deadbeef, junk, 40, t, 0 },
		{ "C_UnwrapKey(hSession, {CKM_AES_KEY_WRAP}, hAES, NULL, 0x7fffffff, template, 3, &h)", &wrap, &S.aes, NULL, HUGE_LEN, t, 0 },
		{ "C_UnwrapKey(hSession, {CKM_AES_KEY_WRAP}, hAES, junk, 0, template, 3, &h)", &wrap, &S.aes, junk, 0, t, 0 },
		/* 1 MiB, not 64: key unwrap is real work on every byte (SoftHSM2
		 * takes 9 s for 64 MiB), and a slow call is not a hang. */
		{ "C_UnwrapKey(hSession, {CKM_AES_KEY_WRAP}, hAES, zeros /* 1 MiB */, 0x100000, template, 3, &h)", &wrap, &S.aes, big,
		  MIB1, t, 0 },
		{ "C_UnwrapKey(hSession, {CKM_AES_KEY_WRAP}, hAES, junk, 40, NULL, 3, &h)", &wrap, &S.aes, junk, 40, NULL, 0 },
		{ "C_UnwrapKey(hSession, {CKM_AES_KEY_WRAP}, hAES, junk, 40, template, 3, NULL)", &wrap, &S.aes, junk, 40, t, 1 },
	};
	for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
		if (v[i].len == MIB1 && big == NULL)
			continue;
		h = 0;
		rv = TRY("C_UnwrapKey", F->C_UnwrapKey(S.hw, v[i].m, *v[i].k, v[i].in, v[i].len, v[i].t, 3, v[i].null_h ? NULL : &h),
			 "%s /* template = %s */", v[i].call, tn);
		destroy(rv, h);
	}
	for (int i = 0; i < nbad_attrs; i++) {
		CK_ULONG n = 3;
		if (bad_attrs[i].a.type == CKA_CLASS)
			t[0] = bad_attrs[i].a;
		else if (bad_attrs[i].a.type == CKA_TOKEN)
			t[2] = bad_attrs[i].a;
		else
			t[n++] = bad_attrs[i].a;
		h = 0;
		rv = TRY("C_UnwrapKey", F->C_UnwrapKey(S.hw, &wrap, S.aes, junk, 40, t, n, &h),
			 "C_UnwrapKey(hSession, {CKM_AES_KEY_WRAP}, hAES, junk, 40, %s with %s, %lu, &h)", tn, bad_attrs[i].name,
			 (unsigned long)n);
		destroy(rv, h);
		t[0] = (CK_ATTRIBUTE){ CKA_CLASS, &secret, sizeof secret };
		t[2] = (CK_ATTRIBUTE){ CKA_TOKEN, &no, 1 };
	}
	big_clean();
}

static void rb_derive(void)
{
	static CK_OBJECT_CLASS secret = CKO_SECRET_KEY;
	static CK_KEY_TYPE generic = CKK_GENERIC_SECRET;
	static CK_ULONG len32 = 32;
	CK_ATTRIBUTE t[] = { { CKA_CLASS, &secret, sizeof secret },
			     { CKA_KEY_TYPE, &generic, sizeof generic },
			     { CKA_TOKEN, &no, 1 },
			     { CKA_VALUE_LEN, &len32, sizeof len32 } };
	CK_BYTE point[65] = { 0x04 };
	CK_ECDH1_DERIVE_PARAMS ok = { CKD_NULL, 0, NULL, sizeof point, point };
	CK_ECDH1_DERIVE_PARAMS pub_huge = { CKD_NULL, 0, NULL, HUGE_LEN, NULL };
	CK_ECDH1_DERIVE_PARAMS shared_huge = { CKD_SHA256_KDF, HUGE_LEN, NULL, sizeof point, point };
	CK_MECHANISM ecdh = { CKM_ECDH1_DERIVE, &ok, sizeof ok };
	const char *tn = "{CKO_SECRET_KEY, CKK_GENERIC_SECRET, CKA_TOKEN=CK_FALSE, CKA_VALUE_LEN=32}";
	CK_OBJECT_HANDLE h = 0;
	CK_RV rv;

	EACH_BAD_SESSION(i)
	TRY("C_DeriveKey", F->C_DeriveKey(bad_s(i), &ecdh, S.priv, t, 4, &h),
	    "C_DeriveKey(%s, {CKM_ECDH1_DERIVE, &params, sizeof params}, hPrivate, %s, 4, &h)", bad_sn(i), tn);
	struct {
		const char *mech;
		CK_MECHANISM m;
	} v[] = {
		{ "{0x7fffff00, NULL, 0}", { MECH_UNKNOWN, NULL, 0 } },
		{ "{CKM_ECDH1_DERIVE, NULL, sizeof(CK_ECDH1_DERIVE_PARAMS)}", { CKM_ECDH1_DERIVE, NULL, sizeof ok } },
		{ "{CKM_ECDH1_DERIVE, b3, 3}", { CKM_ECDH1_DERIVE, b3, 3 } },
		{ "{CKM_ECDH1_DERIVE, &{CKD_NULL, 0, NULL, 0x7fffffff, NULL}, sizeof params}",
		  { CKM_ECDH1_DERIVE, &pub_huge, sizeof pub_huge } },
		{ "{CKM_ECDH1_DERIVE, &{CKD_SHA256_KDF, 0x7fffffff, NULL, 65, point}, sizeof params}",
		  { CKM_ECDH1_DERIVE, &shared_huge, sizeof shared_huge } },
	};
	for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
		h = 0;
		rv = TRY("C_DeriveKey", F->C_DeriveKey(S.hw, &v[i].m, S.priv, t, 4, &h), "C_DeriveKey(hSession, %s, hPrivate, %s, 4, &h)",
			 v[i].mech, tn);
		destroy(rv, h);
	}
	h = 0;
	rv = TRY("C_DeriveKey", F->C_DeriveKey(S.hw, NULL, S.priv, t, 4, &h), "C_DeriveKey(hSession, NULL, hPrivate, %s, 4, &h)", tn);
	destroy(rv, h);
	h = 0;
	rv = TRY("C_DeriveKey", F->C_DeriveKey(S.hw, &ecdh, 0xdeadbeef, t, 4, &h),
		 "C_DeriveKey(hSession, {CKM_ECDH1_DERIVE, &params, sizeof params}, 0xdeadbeef, %s, 4, &h)", tn);
	destroy(rv, h);
	h = 0;
	rv = TRY("C_DeriveKey", F->C_DeriveKey(S.hw, &ecdh, S.priv, NULL, 4, &h),
		 "C_DeriveKey(hSession, {CKM_ECDH1_DERIVE, &params, sizeof params}, hPrivate, NULL, 4, &h)");
	destroy(rv, h);
	TRY("C_DeriveKey", F->C_DeriveKey(S.hw, &ecdh, S.priv, t, 4, NULL),
	    "C_DeriveKey(hSession, {CKM_ECDH1_DERIVE, &params, sizeof params}, hPrivate, %s, 4, NULL)", tn);
}

static void rb_random(void)
{
	EACH_BAD_SESSION(i)
	TRY("C_SeedRandom", F->C_SeedRandom(bad_s(i), junk, 16), "C_SeedRandom(%s, junk, 16)", bad_sn(i));
	TRY("C_SeedRandom", F->C_SeedRandom(S.hw, NULL, HUGE_LEN), "C_SeedRandom(hSession, NULL, 0x7fffffff)");
	TRY("C_SeedRandom", F->C_SeedRandom(S.hw, NULL, 0), "C_SeedRandom(hSession, NULL, 0)");
	TRY("C_SeedRandom", F->C_SeedRandom(S.hw, junk, 0), "C_SeedRandom(hSession, junk, 0)");
	if (big != NULL)
		TRY("C_SeedRandom", F->C_SeedRandom(S.hw, big, MIB64), "C_SeedRandom(hSession, zeros /* 64 MiB */, 0x4000000)");
	EACH_BAD_SESSION(i)
	TRY("C_GenerateRandom", F->C_GenerateRandom(bad_s(i), out, 32), "C_GenerateRandom(%s, buf, 32)", bad_sn(i));
	TRY("C_GenerateRandom", F->C_GenerateRandom(S.hw, NULL, 32), "C_GenerateRandom(hSession, NULL, 32)");
	TRY("C_GenerateRandom", F->C_GenerateRandom(S.hw, out, 0), "C_GenerateRandom(hSession, buf, 0)");
	TRY("C_GenerateRandom", F->C_GenerateRandom(S.hw, NULL, HUGE_LEN), "C_GenerateRandom(hSession, NULL, 0x7fffffff)");
	if (big != NULL)
		TRY("C_GenerateRandom", F->C_GenerateRandom(S.hw, big, MIB64), "C_GenerateRandom(hSession, buf /* 64 MiB mapping */, 0x4000000)");
	big_clean();
}

static void rb_rest(void)
{
	CK_SLOT_ID slot;
	int reserved = 0;

	EACH_BAD_SESSION(i)
	TRY("C_GetFunctionStatus", F->C_GetFunctionStatus(bad_s(i)), "C_GetFunctionStatus(%s)", bad_sn(i));
	TRY("C_GetFunctionStatus", F->C_GetFunctionStatus(S.hw), "C_GetFunctionStatus(hSession)");
	EACH_BAD_SESSION(i)
	TRY("C_CancelFunction", F->C_CancelFunction(bad_s(i)), "C_CancelFunction(%s)", bad_sn(i));
	TRY("C_CancelFunction", F->C_CancelFunction(S.hw), "C_CancelFunction(hSession)");
	/* Never a blocking wait: the driver would wait for an event that
	 * does not come. */
	TRY("C_WaitForSlotEvent", F->C_WaitForSlotEvent(CKF_DONT_BLOCK, &slot, NULL), "C_WaitForSlotEvent(CKF_DONT_BLOCK, &slot, NULL)");
	TRY("C_WaitForSlotEvent", F->C_WaitForSlotEvent(CKF_DONT_BLOCK, NULL, NULL), "C_WaitForSlotEvent(CKF_DONT_BLOCK, NULL, NULL)");
	TRY("C_WaitForSlotEvent", F->C_WaitForSlotEvent(CKF_DONT_BLOCK, &slot, &reserved),
	    "C_WaitForSlotEvent(CKF_DONT_BLOCK, &slot, &x)");
}

static void robustness(struct js *j)
{
	progress("robustness");
	rb_setup();
	R.hangs0 = hangs;
	js_open(&R.findings, "[");
	state_up();
	rb_slots();
	rb_pins();
	rb_sessions();
	rb_login();
	rb_create();
	rb_copy_destroy();
	rb_get();
	rb_set();
	rb_find();
	rb_crypto();
	rb_generate_key();
	rb_generate_key_pair();
	rb_wrap();
	rb_unwrap();
	rb_derive();
	rb_random();
	rb_rest();
	js_close(&R.findings, "]");
	if (big != NULL)
		munmap(big, BIG_LEN);
	big = NULL;
	state_down();

	js_open(j, "{");
	js_key(j, "calls"), js_int(j, R.calls);
	js_key(j, "outcomes"), js_open(j, "{");
	for (int i = 0; i < O_NOUT; i++)
		js_key(j, outcome_names[i]), js_int(j, R.out[i]);
	js_close(j, "}");
	js_key(j, "findings"), js_raw(j, R.findings.b.p);
	js_key(j, "legend"),
		js_str(j, "hSession: an open R/W session (the user logged in when VET_PIN is given); hClosed: a session opened and closed; hPrivate/hPublic: an EC P-256 session key pair (private key sensitive, unextractable); hAES: an AES-256 session key (sensitive, unextractable); hData (when there are no keys): a public session data object; slot: the slot vetted; junk: 0xa5 bytes");
	js_close(j, "}");
	progress("robustness: %ld calls: %ld ok, %ld crash, %ld hang, %ld lie, %ld undefined", R.calls, R.out[O_OK],
		 R.out[O_CRASH], R.out[O_HANG], R.out[O_LIE], R.out[O_UNDEF]);
}

/* ================================================================== */
/* Leaks                                                               */

/* read_small reads a small /proc file, NUL-terminated; -1 if it cannot. */
static ssize_t read_small(const char *path, char *buf, size_t n)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	ssize_t r = read(fd, buf, n - 1);
	close(fd);
	if (r < 0)
		return -1;
	buf[r] = '\0';
	return r;
}

static pid_t parent_of(pid_t pid)
{
	char path[64], buf[1024];
	int ppid;

	snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
	if (read_small(path, buf, sizeof buf) <= 0)
		return -1;
	char *p = strrchr(buf, ')'); /* the name may hold anything, ')' too */
	if (p == NULL || sscanf(p + 1, " %*c %d", &ppid) != 1)
		return -1;
	return ppid;
}

/* status_field reads a number from /proc/PID/status ("VmRSS", "Threads");
 * -1 if it cannot. */
static long status_field(pid_t pid, const char *name)
{
	char path[64], buf[4096];
	size_t l = strlen(name);

	snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
	if (read_small(path, buf, sizeof buf) <= 0)
		return -1;
	for (char *p = buf; p != NULL && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL)
		if (strncmp(p, name, l) == 0 && p[l] == ':')
			return strtol(p + l + 1, NULL, 10);
	return -1;
}

/* is_host: the host runs from a memfd named p11isolate-host, so its
 * comm, its argv[0] or its executable's name says so. */
static int is_host(pid_t pid)
{
	char path[64], buf[256];
	ssize_t n;

	snprintf(path, sizeof path, "/proc/%d/comm", (int)pid);
	if (read_small(path, buf, sizeof buf) > 0 && strstr(buf, "p11isolate-host") != NULL)
		return 1;
	snprintf(path, sizeof path, "/proc/%d/cmdline", (int)pid);
	if (read_small(path, buf, sizeof buf) > 0 && strstr(buf, "p11isolate-host") != NULL)
		return 1;
	snprintf(path, sizeof path, "/proc/%d/exe", (int)pid);
	n = readlink(path, buf, sizeof buf - 1);
	if (n > 0) {
		buf[n] = '\0';
		return strstr(buf, "p11isolate-host") != NULL;
	}
	return 0;
}

static int descends_from_me(pid_t pid)
{
	pid_t me = getpid();
	for (int depth = 0; depth < 8 && pid > 1; depth++) {
		pid = parent_of(pid);
		if (pid == me)
			return 1;
	}
	return 0;
}

/* find_host finds the host among this process's descendants: with the
 * sandbox the library's child is the init of a pid namespace and the host
 * its child, so the one with the most memory is the one running the
 * module. 0 if none. */
static pid_t find_host(void)
{
	DIR *d = opendir("/proc");
	struct dirent *de;
	pid_t best = 0;
	long best_rss = -1;

	if (d == NULL)
		return 0;
	while ((de = readdir(d)) != NULL) {
		char *end;
		long pid = strtol(de->d_name, &end, 10);
		if (*end != '\0' || pid <= 1 || pid == getpid())
			continue;
		if (!descends_from_me((pid_t)pid) || !is_host((pid_t)pid))
			continue;
		long rss = status_field((pid_t)pid, "VmRSS");
		if (rss > best_rss) {
			best_rss = rss;
			best = (pid_t)pid;
		}
	}
	closedir(d);
	return best;
}

static long count_fds(pid_t pid)
{
	char path[64];
	DIR *d;
	struct dirent *de;
	long n = 0;

	snprintf(path, sizeof path, "/proc/%d/fd", (int)pid);
	if ((d = opendir(path)) == NULL)
		return -1;
	while ((de = readdir(d)) != NULL)
		if (de->d_name[0] != '.')
			n++;
	closedir(d);
	return n;
}

struct sample {
	long rss_kib, fds, threads;
};

static void take_sample(pid_t pid, struct sample *s)
{
	s->rss_kib = status_field(pid, "VmRSS");
	s->fds = count_fds(pid);
	s->threads = status_field(pid, "Threads");
}

static void js_pair(struct js *j, long a, long b)
{
	js_open(j, "[");
	if (a < 0)
		js_raw(j, "null");
	else
		js_int(j, a);
	if (b < 0)
		js_raw(j, "null");
	else
		js_int(j, b);
	js_close(j, "]");
}

/* leak_round makes one round of the mix: 8 calls, the number that failed
 * counted in *failed. */
static int leak_round(CK_SESSION_HANDLE h, long *failed, CK_RV *first)
{
	CK_INFO ci;
	CK_SLOT_INFO si;
	CK_SESSION_HANDLE s;
	CK_BYTE rnd[32];
	CK_OBJECT_HANDLE found[16];
	CK_ULONG n;
	CK_RV rv[8] = { 0 };

	rv[0] = F->C_GetInfo(&ci);
	rv[1] = F->C_GetSlotInfo(V.id, &si);
	rv[2] = F->C_OpenSession(V.id, CKF_SERIAL_SESSION, NULL, NULL, &s);
	rv[3] = rv[2] == CKR_OK ? F->C_CloseSession(s) : rv[2];
	rv[4] = F->C_GenerateRandom(h, rnd, sizeof rnd);
	rv[5] = F->C_FindObjectsInit(h, NULL, 0);
	rv[6] = rv[5] == CKR_OK ? F->C_FindObjects(h, found, 16, &n) : rv[5];
	rv[7] = rv[5] == CKR_OK ? F->C_FindObjectsFinal(h) : rv[5];
	for (int i = 0; i < 8; i++)
		if (rv[i] != CKR_OK) {
			if (*failed == 0)
				*first = rv[i];
			++*failed;
		}
	return 8;
}

static const char leak_ops[] = "C_GetInfo, C_GetSlotInfo, C_OpenSession+C_CloseSession, C_GenerateRandom(32), C_FindObjectsInit+C_FindObjects+C_FindObjectsFinal";

static void leaks(struct js *j)
{
	CK_SESSION_HANDLE h;
	struct sample before, after;
	long calls = 0, failed = 0;
	CK_RV first = CKR_OK, rv;
	struct incident in;

	progress("leaks: %ld calls", O.leak_calls);
	if (!V.have || (rv = open_rw(&h)) != CKR_OK) {
		err("leaks skipped: %s", V.have ? xfmt("C_OpenSession: %s", ckr(rv)) : "no slot with a token");
		js_raw(j, "null");
		return;
	}
	if (O.pin != NULL)
		login(h);
	off_t mark = log_size();
	for (int i = 0; i < 200; i++)
		leak_round(h, &failed, &first);
	pid_t pid = find_host();
	if (pid == 0)
		err("leaks: no p11isolate-host process found among the driver's descendants: no samples");
	take_sample(pid, &before);
	while (calls < O.leak_calls)
		calls += leak_round(h, &failed, &first);
	take_sample(pid, &after);
	pid_t pid2 = find_host();
	F->C_CloseSession(h);
	classify(mark, &in);
	if (in.o != O_OK)
		err("leaks: the host did not survive the run (%s): %s", outcome_names[in.o], in.line);
	else if (pid2 != pid)
		err("leaks: the host changed during the run (pid %d, then %d): the samples are of different processes", (int)pid, (int)pid2);
	if (failed > 0)
		err("leaks: %ld of the calls failed, the first with %s", failed, ckr(first));
	if (pid != 0 && before.fds < 0)
		err("leaks: /proc/%d/fd cannot be read: no fd counts", (int)pid);

	js_open(j, "{");
	js_key(j, "calls"), js_int(j, calls);
	js_key(j, "ops"), js_str(j, leak_ops);
	js_key(j, "host_pid");
	if (pid != 0)
		js_int(j, pid);
	else
		js_raw(j, "null");
	js_key(j, "rss_kib"), js_pair(j, pid ? before.rss_kib : -1, pid ? after.rss_kib : -1);
	js_key(j, "fds"), js_pair(j, pid ? before.fds : -1, pid ? after.fds : -1);
	js_key(j, "threads"), js_pair(j, pid ? before.threads : -1, pid ? after.threads : -1);
	js_key(j, "failed"), js_int(j, failed);
	js_close(j, "}");
}

/* ================================================================== */
/* Cost                                                                */

#define COST_US 200000.0 /* time for each operation: ~1 s for the five */
#define COST_MAX 100000

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

struct cost_ctx {
	CK_SESSION_HANDLE h;
};

static CK_RV time_get_info(struct cost_ctx *c)
{
	CK_INFO ci;
	(void)c;
	return F->C_GetInfo(&ci);
}

static CK_RV time_session(struct cost_ctx *c)
{
	CK_SESSION_HANDLE s;
	CK_RV rv = F->C_OpenSession(V.id, CKF_SERIAL_SESSION, NULL, NULL, &s);
	(void)c;
	return rv != CKR_OK ? rv : F->C_CloseSession(s);
}

static CK_RV time_random(struct cost_ctx *c)
{
	CK_BYTE b[32];
	return F->C_GenerateRandom(c->h, b, sizeof b);
}

static CK_RV time_digest(struct cost_ctx *c)
{
	CK_BYTE d[64];
	CK_ULONG l = sizeof d;
	return digest_once(c->h, CKM_SHA256, d, &l);
}

static CK_RV time_sign(struct cost_ctx *c)
{
	CK_BYTE sig[256];
	CK_ULONG l = sizeof sig;
	(void)c;
	return sign_once(S.hw, data32, sig, &l);
}

/* cost_op times op for COST_US and adds its p50 and mean. */
static void cost_op(struct js *j, const char *name, CK_RV (*op)(struct cost_ctx *), struct cost_ctx *c)
{
	static double t[COST_MAX];
	int n = 0;
	double start = mono_us(), sum = 0;
	CK_RV rv = CKR_OK;

	while (n < COST_MAX && (n < 10 || mono_us() - start < COST_US)) {
		double t0 = mono_us();
		if ((rv = op(c)) != CKR_OK)
			break;
		t[n] = mono_us() - t0;
		sum += t[n++];
	}
	if (rv != CKR_OK) {
		err("cost: %s: %s", name, ckr(rv));
		return;
	}
	qsort(t, (size_t)n, sizeof t[0], cmp_double);
	js_open(j, "{");
	js_key(j, "op"), js_str(j, name);
	js_key(j, "n"), js_int(j, n);
	js_key(j, "p50_us"), js_num(j, n % 2 ? t[n / 2] : (t[n / 2 - 1] + t[n / 2]) / 2);
	js_key(j, "mean_us"), js_num(j, sum / n);
	js_close(j, "}");
}

static void cost(struct js *j)
{
	struct cost_ctx c = { 0 };

	progress("cost");
	js_open(j, "[");
	cost_op(j, "C_GetInfo", time_get_info, &c);
	if (V.have && open_rw(&c.h) == CKR_OK) {
		cost_op(j, "C_OpenSession+C_CloseSession", time_session, &c);
		cost_op(j, "C_GenerateRandom(32)", time_random, &c);
		if (has_mech(CKM_SHA256))
			cost_op(j, "C_DigestInit+C_Digest(SHA-256, 1 KiB)", time_digest, &c);
		if (keys_why() == NULL)
			cost_op(j, "C_SignInit+C_Sign(ECDSA P-256)", time_sign, &c);
		F->C_CloseSession(c.h);
	} else if (V.have) {
		err("cost: C_OpenSession failed: only C_GetInfo timed");
	}
	js_close(j, "]");
}

/* ================================================================== */
/* main                                                                */

/* The interfaces the module offers through the proxy (its "PKCS 11"
 * interfaces: the proxy offers no other), by C_GetInterfaceList. */
static struct js ifaces;

static void interfaces(void *lib)
{
	CK_RV (*list)(CK_INTERFACE_PTR, CK_ULONG_PTR) = (CK_RV(*)(CK_INTERFACE_PTR, CK_ULONG_PTR))dlsym(lib, "C_GetInterfaceList");
	CK_INTERFACE v[16];
	CK_ULONG n = sizeof v / sizeof v[0];
	char ver[16];

	js_open(&ifaces, "[");
	if (list != NULL && list(v, &n) == CKR_OK) {
		for (CK_ULONG i = 0; i < n; i++) {
			const CK_VERSION *fv = v[i].pFunctionList;
			js_open(&ifaces, "{");
			js_key(&ifaces, "name"), js_str(&ifaces, v[i].pInterfaceName ? (const char *)v[i].pInterfaceName : "");
			snprintf(ver, sizeof ver, "%u.%u", fv != NULL ? fv->major : 0, fv != NULL ? fv->minor : 0);
			js_key(&ifaces, "version"), js_str(&ifaces, ver);
			js_key(&ifaces, "flags"), js_ulong(&ifaces, v[i].flags);
			js_close(&ifaces, "}");
		}
	}
	js_close(&ifaces, "]");
}

static void emit(struct js *info, struct js *sl, struct js *sec[SEC_N], double start)
{
	struct js out = { 0 };

	js_open(&out, "{");
	js_key(&out, "info"), js_raw(&out, info->b.p ? info->b.p : "null");
	js_key(&out, "interfaces"), js_raw(&out, ifaces.b.p ? ifaces.b.p : "null");
	js_key(&out, "slots"), js_raw(&out, sl->b.p ? sl->b.p : "null");
	js_key(&out, "slot");
	if (V.have)
		js_ulong(&out, V.id);
	else
		js_raw(&out, "null");
	for (int i = SEC_CONFORMANCE; i < SEC_N; i++)
		js_key(&out, sec_names[i]), js_raw(&out, sec[i]->b.p ? sec[i]->b.p : "null");
	js_key(&out, "errors"), js_open(&out, "[");
	for (int i = 0; i < E.n; i++)
		js_str(&out, E.v[i]);
	js_close(&out, "]");
	js_key(&out, "duration_s"), js_num(&out, (mono_us() - start) / 1e6);
	js_close(&out, "}");
	puts(out.b.p);
	fflush(stdout);
}

int main(int argc, char **argv)
{
	struct js info = { 0 }, sl = { 0 }, rob = { 0 }, lk = { 0 }, cs = { 0 }, none = { 0 };
	struct js *sec[SEC_N] = { &none, &CJ, &rob, &lk, &cs };
	double start = mono_us();
	CK_C_GetFunctionList get;
	void *lib;
	CK_RV rv;

	if (argc != 2) {
		fprintf(stderr, "usage: p11isolate-vet-driver LIBP11ISOLATE.so (settings in the environment: see p11isolate vet)\n");
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	read_options();
	open_log();
	/* The hosts of this run get the watch shim: p11isolate vet passes
	 * LD_PRELOAD and P11I_WATCH through the env setting, and they are
	 * set only now, after this process started, so that the shim is
	 * never loaded into the driver itself. */
	const char *shim = getenv("VET_PRELOAD");
	if (shim != NULL && *shim != '\0') {
		setenv("LD_PRELOAD", shim, 1);
		setenv("P11I_WATCH", "1", 1);
	}
	if ((lib = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL)) == NULL) {
		err("cannot load %s: %s", argv[1], dlerror());
		emit(&info, &sl, sec, start);
		return 1;
	}
	interfaces(lib);
	get = (CK_C_GetFunctionList)dlsym(lib, "C_GetFunctionList");
	if (get == NULL || (rv = get(&F)) != CKR_OK || F == NULL) {
		err("%s has no usable C_GetFunctionList", argv[1]);
		emit(&info, &sl, sec, start);
		return 1;
	}
	if ((rv = F->C_Initialize(&os_locking)) != CKR_OK) {
		struct incident in;
		classify(0, &in);
		err("C_Initialize(CKF_OS_LOCKING_OK): %s%s%s: nothing else can be vetted", ckr(rv), in.o ? ": " : "", in.o ? in.line : "");
		emit(&info, &sl, sec, start);
		return 1;
	}
	for (CK_ULONG i = 0; i < sizeof kib; i++)
		kib[i] = (CK_BYTE)(i * 31 + 7);
	choose_slot();
	if (!O.skip[SEC_INVENTORY])
		inventory(&info, &sl);
	if (!O.skip[SEC_CONFORMANCE])
		conformance();
	if (initialized && !O.skip[SEC_ROBUSTNESS])
		robustness(&rob);
	if (initialized && !O.skip[SEC_LEAKS]) {
		/* The leak check samples a fresh host: after the robustness
		 * calls' large buffers, a heap with that much room grows by
		 * nothing while a module leaks into it. */
		state_down();
		F->C_Finalize(NULL);
		initialized = F->C_Initialize(&os_locking) == CKR_OK;
		if (initialized) {
			resolve_slot();
			leaks(&lk);
		} else {
			err("leaks: C_Initialize again failed: the leak check and the costs are skipped");
		}
	}
	if (initialized && !O.skip[SEC_COST])
		cost(&cs);
	state_down();
	if (initialized)
		F->C_Finalize(NULL);
	emit(&info, &sl, sec, start);
	return 0;
}
