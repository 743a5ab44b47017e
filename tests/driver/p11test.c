/* p11test: integration driver for libp11isolate.so.
 *
 *   p11test MODULE SCENARIO [args]
 *
 * dlopens MODULE, runs one scenario and prints one line per check:
 *   ok   - <what>
 *   FAIL - <what>: got X want Y
 * Lines starting with '#' are information. Exits non-zero if any check
 * failed. Scenarios: basic, compare, crash, fork, fds, timing, threads,
 * errors (see usage()).
 *
 * Environment the driver reads (run.sh sets them):
 *   P11TEST_FAULTMOD  path of libfaultmod.so (default: beside MODULE,
 *                     MODULEDIR/tests/libfaultmod.so)
 *   P11TEST_SOFTHSM   path of SoftHSM2 (default /usr/lib/softhsm/libsofthsm2.so)
 *   P11TEST_DEADLINE  seconds the whole scenario may take (default 240)
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <p11-kit/pkcs11.h>

#include "../common/ckr.h"
#include "../common/report.h"

/* ------------------------------------------------------------------ */
/* Reporting                                                           */

static const char *module_path;

/* rvs returns the symbolic name of rv. */
static const char *rvs(CK_RV rv) { return ckr_name(rv); }

/* check_rv checks that rv is want. */
static int check_rv(const char *what, CK_RV got, CK_RV want)
{
	if (got == want)
		return check(1, "%s", what);
	return check(0, "%s: got %s want %s", what, rvs(got), rvs(want));
}

__attribute__((format(printf, 1, 2))) static void fail(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	atomic_fetch_add(&n_fail, 1);
	vsay("FAIL - ", fmt, ap);
	va_end(ap);
}

/* die ends the run after a failure that makes further checks meaningless
 * (for example the library is stuck in a call that never returns). */
static void die_now(const char *why)
{
	fail("%s (aborting the scenario)", why);
	note("%d checks passed, %d failed", atomic_load(&n_ok), atomic_load(&n_fail));
	fflush(stdout);
	_exit(1);
}

static void on_deadline(int sig)
{
	(void)sig;
	static const char msg[] = "FAIL - the scenario did not finish before its deadline (P11TEST_DEADLINE): something hangs\n";
	ssize_t unused = write(STDOUT_FILENO, msg, sizeof(msg) - 1);
	(void)unused;
	_exit(2);
}

/* ------------------------------------------------------------------ */
/* Small utilities                                                     */

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
	}
}

static const char *env_or(const char *name, const char *def)
{
	const char *v = getenv(name);
	return v && *v ? v : def;
}

static const char *softhsm_path(void)
{
	return env_or("P11TEST_SOFTHSM", "/usr/lib/softhsm/libsofthsm2.so");
}

static const char *faultmod_path(void)
{
	static char buf[PATH_MAX];
	const char *v = getenv("P11TEST_FAULTMOD");
	if (v && *v)
		return v;
	const char *slash = strrchr(module_path, '/');
	if (slash == NULL)
		snprintf(buf, sizeof(buf), "tests/libfaultmod.so");
	else
		snprintf(buf, sizeof(buf), "%.*s/tests/libfaultmod.so", (int)(slash - module_path), module_path);
	return buf;
}

static CK_FUNCTION_LIST_PTR load_module(const char *path)
{
	void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	if (h == NULL) {
		fail("dlopen %s: %s", path, dlerror());
		return NULL;
	}
	CK_C_GetFunctionList get = (CK_C_GetFunctionList)dlsym(h, "C_GetFunctionList");
	if (get == NULL) {
		fail("%s has no C_GetFunctionList", path);
		return NULL;
	}
	CK_FUNCTION_LIST_PTR f = NULL;
	CK_RV rv = get(&f);
	if (rv != CKR_OK || f == NULL) {
		fail("C_GetFunctionList of %s: got %s want CKR_OK", path, rvs(rv));
		return NULL;
	}
	return f;
}

static CK_C_INITIALIZE_ARGS os_locking_args(void)
{
	CK_C_INITIALIZE_ARGS a;
	memset(&a, 0, sizeof(a));
	a.flags = CKF_OS_LOCKING_OK;
	return a;
}

static CK_RV init_locking(CK_FUNCTION_LIST_PTR f)
{
	CK_C_INITIALIZE_ARGS a = os_locking_args();
	return f->C_Initialize(&a);
}

/* Writes the fault spec to the FAULTMOD_FILE by rename(), so every write is
 * a new inode and re-arms the fault. */
static char fault_file[PATH_MAX];

static void arm(const char *spec)
{
	char tmp[PATH_MAX + 8];
	snprintf(tmp, sizeof(tmp), "%s.new", fault_file);
	FILE *fp = fopen(tmp, "w");
	if (fp == NULL) {
		fail("cannot write %s: %s", tmp, strerror(errno));
		return;
	}
	fprintf(fp, "%s\n", spec);
	fclose(fp);
	if (rename(tmp, fault_file) != 0)
		fail("rename %s: %s", tmp, strerror(errno));
}

/* Points the proxy at faultmod with a fault file (disarmed). */
static void setup_faultmod_env(void)
{
	snprintf(fault_file, sizeof(fault_file), "%s/p11test-fault-%d", env_or("TMPDIR", "/tmp"), (int)getpid());
	arm("none");
	setenv("P11ISOLATE_MODULE", faultmod_path(), 1);
	setenv("FAULTMOD_FILE", fault_file, 1);
	unsetenv("FAULTMOD_FAULT");
	/* The host gets only allowlisted variables: let faultmod's through. */
	setenv("P11ISOLATE_ENV", "FAULTMOD_*", 0);
}

static void cleanup_fault_file(void)
{
	if (fault_file[0])
		unlink(fault_file);
}

/* ------------------------------------------------------------------ */
/* Finding the host process                                            */

struct child {
	pid_t pid;
	char state;
	int is_host;
};

/* list_children scans /proc for processes whose parent is us. */
static int list_children(struct child *out, int max)
{
	DIR *d = opendir("/proc");
	if (d == NULL)
		return 0;
	int n = 0;
	pid_t me = getpid();
	struct dirent *de;
	while ((de = readdir(d)) != NULL && n < max) {
		char *end;
		long pid = strtol(de->d_name, &end, 10);
		if (*end != '\0' || pid <= 0)
			continue;
		char path[64], buf[512];
		snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
		int fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			continue;
		ssize_t len = read(fd, buf, sizeof(buf) - 1);
		close(fd);
		if (len <= 0)
			continue;
		buf[len] = '\0';
		char *p = strrchr(buf, ')');
		char state;
		long ppid;
		if (p == NULL || sscanf(p + 1, " %c %ld", &state, &ppid) != 2 || ppid != me)
			continue;
		out[n].pid = (pid_t)pid;
		out[n].state = state;
		out[n].is_host = 0;
		snprintf(path, sizeof(path), "/proc/%ld/cmdline", pid);
		fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd >= 0) {
			len = read(fd, buf, sizeof(buf) - 1);
			close(fd);
			if (len > 0) {
				buf[len] = '\0';
				out[n].is_host = strstr(buf, "p11isolate-host") != NULL;
			}
		}
		n++;
	}
	closedir(d);
	return n;
}

/* host_pid returns the pid of our (single, live) host child, 0 if none, -1
 * if there are several. */
static pid_t host_pid(void)
{
	struct child c[64];
	int n = list_children(c, 64);
	pid_t found = 0;
	for (int i = 0; i < n; i++) {
		if (!c[i].is_host || c[i].state == 'Z' || c[i].state == 'X')
			continue;
		if (found)
			return -1;
		found = c[i].pid;
	}
	return found;
}

/* count_hosts counts host children in any state (zombies included). */
static int count_hosts(char *desc, size_t desclen)
{
	struct child c[64];
	int n = list_children(c, 64), hosts = 0;
	size_t used = 0;
	if (desclen)
		desc[0] = '\0';
	for (int i = 0; i < n; i++) {
		if (!c[i].is_host)
			continue;
		hosts++;
		if (used < desclen)
			used += (size_t)snprintf(desc + used, desclen - used, "%s%d(%c)", used ? " " : "",
						 (int)c[i].pid, c[i].state);
	}
	return hosts;
}

/* wait_no_hosts waits up to ms for every host child to be gone. */
static int wait_no_hosts(long ms, char *desc, size_t desclen)
{
	double end = now_s() + (double)ms / 1000.0;
	for (;;) {
		int n = count_hosts(desc, desclen);
		if (n == 0 || now_s() > end)
			return n;
		sleep_ms(50);
	}
}

/* gone reports whether pid no longer exists (not even as a zombie). */
static int wait_gone(pid_t pid, long ms)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	double end = now_s() + (double)ms / 1000.0;
	for (;;) {
		if (access(path, F_OK) != 0)
			return 1;
		if (now_s() > end)
			return 0;
		sleep_ms(50);
	}
}

/* ------------------------------------------------------------------ */
/* Running a call under a watchdog                                     */

struct timed {
	CK_RV (*fn)(void *);
	void *arg;
	CK_RV rv;
	int done;
	pthread_mutex_t mu;
	pthread_cond_t cv;
};

static void *timed_thread(void *p)
{
	struct timed *t = p;
	CK_RV rv = t->fn(t->arg);
	pthread_mutex_lock(&t->mu);
	t->rv = rv;
	t->done = 1;
	pthread_cond_signal(&t->cv);
	pthread_mutex_unlock(&t->mu);
	return NULL;
}

/* run_timed runs fn(arg) in a thread and waits up to secs for it. Returns 1
 * with *rv set when it returned in time, 0 when it is still running (the
 * thread is left behind: the caller should give up). *elapsed is set. */
static int run_timed(CK_RV (*fn)(void *), void *arg, double secs, CK_RV *rv, double *elapsed)
{
	struct timed *t = calloc(1, sizeof(*t)); /* leaked on timeout on purpose */
	t->fn = fn;
	t->arg = arg;
	pthread_mutex_init(&t->mu, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&t->cv, &ca);
	double start = now_s();
	pthread_t th;
	if (pthread_create(&th, NULL, timed_thread, t) != 0) {
		*rv = fn(arg);
		*elapsed = now_s() - start;
		free(t);
		return 1;
	}
	struct timespec dl;
	clock_gettime(CLOCK_MONOTONIC, &dl);
	dl.tv_sec += (time_t)secs;
	pthread_mutex_lock(&t->mu);
	while (!t->done) {
		if (pthread_cond_timedwait(&t->cv, &t->mu, &dl) == ETIMEDOUT)
			break;
	}
	int done = t->done;
	pthread_mutex_unlock(&t->mu);
	*elapsed = now_s() - start;
	if (!done) {
		pthread_detach(th);
		return 0;
	}
	pthread_join(th, NULL);
	*rv = t->rv;
	free(t);
	return 1;
}

/* ------------------------------------------------------------------ */
/* PKCS#11 helpers                                                     */

static CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
static const CK_BYTE p256_oid[] = { 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07 };
static const CK_BYTE rsa_exp[] = { 0x01, 0x00, 0x01 };
/* SHA-256("abc") */
static const CK_BYTE sha256_abc[32] = {
	0xba, 0x78, 0x16, 0xbf, 0x8f, 0x01, 0xcf, 0xea, 0x41, 0x41, 0x40, 0xde, 0x5d, 0xae, 0x22, 0x23,
	0xb0, 0x03, 0x61, 0xa3, 0x96, 0x17, 0x7a, 0x9c, 0xb4, 0x10, 0xff, 0x61, 0xf2, 0x00, 0x15, 0xad,
};

/* find_token_slot picks the first slot holding an initialized token. */
static CK_RV find_token_slot(CK_FUNCTION_LIST_PTR f, CK_SLOT_ID *slot)
{
	CK_SLOT_ID list[64];
	CK_ULONG n = 64;
	CK_RV rv = f->C_GetSlotList(CK_TRUE, list, &n);
	if (rv != CKR_OK)
		return rv;
	for (CK_ULONG i = 0; i < n; i++) {
		CK_TOKEN_INFO ti;
		if (f->C_GetTokenInfo(list[i], &ti) == CKR_OK && (ti.flags & CKF_TOKEN_INITIALIZED)) {
			*slot = list[i];
			return CKR_OK;
		}
	}
	return CKR_TOKEN_NOT_PRESENT;
}

/* open_login opens a RW session and logs the user in; a login already done
 * by another session of this application counts as success. */
static CK_RV open_login(CK_FUNCTION_LIST_PTR f, CK_SLOT_ID slot, const char *pin, CK_SESSION_HANDLE *s)
{
	CK_RV rv = f->C_OpenSession(slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, s);
	if (rv != CKR_OK)
		return rv;
	rv = f->C_Login(*s, CKU_USER, (CK_UTF8CHAR_PTR)pin, strlen(pin));
	if (rv == CKR_USER_ALREADY_LOGGED_IN)
		rv = CKR_OK;
	return rv;
}

static CK_RV gen_ec(CK_FUNCTION_LIST_PTR f, CK_SESSION_HANDLE s, const char *label, CK_BBOOL *token,
		    CK_OBJECT_HANDLE *pub, CK_OBJECT_HANDLE *priv)
{
	CK_MECHANISM m = { CKM_EC_KEY_PAIR_GEN, NULL, 0 };
	CK_ATTRIBUTE pubt[] = {
		{ CKA_EC_PARAMS, (void *)p256_oid, sizeof(p256_oid) },
		{ CKA_VERIFY, &yes, sizeof(yes) },
		{ CKA_TOKEN, token, sizeof(*token) },
		{ CKA_LABEL, (void *)label, strlen(label) },
	};
	CK_ATTRIBUTE privt[] = {
		{ CKA_SIGN, &yes, sizeof(yes) },
		{ CKA_PRIVATE, &yes, sizeof(yes) },
		{ CKA_SENSITIVE, &yes, sizeof(yes) },
		{ CKA_TOKEN, token, sizeof(*token) },
		{ CKA_LABEL, (void *)label, strlen(label) },
	};
	return f->C_GenerateKeyPair(s, &m, pubt, 4, privt, 5, pub, priv);
}

/* find_objects finds objects with label (and class, unless it is -1). */
static CK_RV find_objects(CK_FUNCTION_LIST_PTR f, CK_SESSION_HANDLE s, const char *label, CK_OBJECT_CLASS cls,
			  CK_OBJECT_HANDLE *out, CK_ULONG max, CK_ULONG *count)
{
	CK_ATTRIBUTE t[] = {
		{ CKA_LABEL, (void *)label, strlen(label) },
		{ CKA_CLASS, &cls, sizeof(cls) },
	};
	CK_RV rv = f->C_FindObjectsInit(s, t, cls == (CK_OBJECT_CLASS)-1 ? 1 : 2);
	if (rv != CKR_OK)
		return rv;
	*count = 0;
	rv = f->C_FindObjects(s, out, max, count);
	CK_RV rv2 = f->C_FindObjectsFinal(s);
	return rv != CKR_OK ? rv : rv2;
}

/* find_pair finds the one public and one private key with label. */
static CK_RV find_pair(CK_FUNCTION_LIST_PTR f, CK_SESSION_HANDLE s, const char *label, CK_OBJECT_HANDLE *pub,
		       CK_OBJECT_HANDLE *priv)
{
	CK_ULONG n;
	CK_RV rv = find_objects(f, s, label, CKO_PUBLIC_KEY, pub, 1, &n);
	if (rv != CKR_OK)
		return rv;
	if (n != 1)
		return CKR_GENERAL_ERROR;
	rv = find_objects(f, s, label, CKO_PRIVATE_KEY, priv, 1, &n);
	if (rv != CKR_OK)
		return rv;
	return n == 1 ? CKR_OK : CKR_GENERAL_ERROR;
}

/* ec_sign_verify signs a fixed digest with ECDSA and verifies it; returns the
 * first failing rv (CKR_SIGNATURE_INVALID when the verify failed). *step
 * names the failing call. */
static CK_RV ec_sign_verify(CK_FUNCTION_LIST_PTR f, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE priv,
			    CK_OBJECT_HANDLE pub, const char **step)
{
	CK_MECHANISM m = { CKM_ECDSA, NULL, 0 };
	CK_BYTE sig[128];
	CK_ULONG siglen = sizeof(sig);
	CK_RV rv;
	const char *dummy;
	if (step == NULL)
		step = &dummy;
	*step = "C_SignInit";
	if ((rv = f->C_SignInit(s, &m, priv)) != CKR_OK)
		return rv;
	*step = "C_Sign";
	if ((rv = f->C_Sign(s, (CK_BYTE_PTR)sha256_abc, 32, sig, &siglen)) != CKR_OK)
		return rv;
	*step = "C_VerifyInit";
	if ((rv = f->C_VerifyInit(s, &m, pub)) != CKR_OK)
		return rv;
	*step = "C_Verify";
	return f->C_Verify(s, (CK_BYTE_PTR)sha256_abc, 32, sig, siglen);
}

static void hex(const CK_BYTE *b, size_t n, char *out, size_t outlen)
{
	size_t j = 0;
	for (size_t i = 0; i < n && j + 3 < outlen; i++)
		j += (size_t)snprintf(out + j, outlen - j, "%02x", b[i]);
	out[j < outlen ? j : outlen - 1] = '\0';
}

static void trim(const CK_UTF8CHAR *s, size_t n, char *out)
{
	memcpy(out, s, n);
	out[n] = '\0';
	for (size_t i = n; i > 0 && out[i - 1] == ' '; i--)
		out[i - 1] = '\0';
}

/* ------------------------------------------------------------------ */
/* basic                                                               */

/* bulk_find: 10000 handles from one C_FindObjects call, in a session of
 * their own (the objects go with the session). */
static void bulk_find(CK_FUNCTION_LIST_PTR f, CK_SLOT_ID slot)
{
	CK_RV rv;
	{
		enum { NBIG = 10000 };
		CK_SESSION_HANDLE s2 = CK_INVALID_HANDLE;
		rv = f->C_OpenSession(slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &s2);
		CK_OBJECT_CLASS dcls = CKO_DATA;
		const char *label = "p11test-bulk";
		int made = 0;
		for (int i = 0; rv == CKR_OK && i < NBIG; i++) {
			CK_ATTRIBUTE t[] = {
				{ CKA_CLASS, &dcls, sizeof(dcls) },
				{ CKA_TOKEN, &no, sizeof(no) },
				{ CKA_PRIVATE, &no, sizeof(no) },
				{ CKA_LABEL, (void *)label, strlen(label) },
			};
			CK_OBJECT_HANDLE o;
			rv = f->C_CreateObject(s2, t, 4, &o);
			made += rv == CKR_OK;
		}
		check(rv == CKR_OK && made == NBIG, "C_CreateObject %d data objects: %d made, %s", NBIG, made, rvs(rv));
		CK_OBJECT_HANDLE *out = calloc(NBIG + 8, sizeof(*out));
		CK_ULONG cnt = 0;
		CK_ATTRIBUTE t = { CKA_LABEL, (void *)label, strlen(label) };
		rv = f->C_FindObjectsInit(s2, &t, 1);
		if (rv == CKR_OK)
			rv = f->C_FindObjects(s2, out, NBIG + 8, &cnt);
		/* distinct? sort a copy */
		int dups = 0;
		for (CK_ULONG i = 1; i < cnt; i++) {
			CK_OBJECT_HANDLE v = out[i];
			CK_ULONG j = i;
			while (j > 0 && out[j - 1] > v) { /* insertion sort: the input is nearly sorted */
				out[j] = out[j - 1];
				j--;
			}
			out[j] = v;
		}
		for (CK_ULONG i = 1; i < cnt; i++)
			dups += out[i] == out[i - 1];
		check(rv == CKR_OK && cnt == NBIG && dups == 0,
		      "C_FindObjects returns the %d handles in one call, all distinct: %s, %lu handles, %d duplicates", NBIG,
		      rvs(rv), (unsigned long)cnt, dups);
		rv = f->C_FindObjectsFinal(s2);
		check_rv("C_FindObjectsFinal after the big search", rv, CKR_OK);
		CK_BYTE r[8];
		rv = f->C_GenerateRandom(s2, r, sizeof(r));
		check_rv("C_GenerateRandom after the big search (the vendor is intact)", rv, CKR_OK);
		rv = f->C_CloseSession(s2);
		check_rv("C_CloseSession of the bulk session", rv, CKR_OK);
		free(out);
	}

}

static int scenario_basic(CK_FUNCTION_LIST_PTR f, const char *pin)
{
	CK_RV rv;
	char txt[600];

	if (!check_rv("C_Initialize (CKF_OS_LOCKING_OK)", init_locking(f), CKR_OK))
		return finish();

	CK_INFO info;
	memset(&info, 0, sizeof(info));
	rv = f->C_GetInfo(&info);
	check_rv("C_GetInfo", rv, CKR_OK);
	{
		char man[33], desc[33];
		trim(info.manufacturerID, 32, man);
		trim(info.libraryDescription, 32, desc);
		note("C_GetInfo: cryptoki %u.%u, manufacturer \"%s\", library \"%s\" %u.%u", info.cryptokiVersion.major,
		     info.cryptokiVersion.minor, man, desc, info.libraryVersion.major, info.libraryVersion.minor);
		check(info.cryptokiVersion.major == 2 || info.cryptokiVersion.major == 3,
		      "C_GetInfo cryptokiVersion is 2.x or 3.x: got %u.%u", info.cryptokiVersion.major,
		      info.cryptokiVersion.minor);
	}

	CK_ULONG n = 0;
	rv = f->C_GetSlotList(CK_TRUE, NULL, &n);
	check_rv("C_GetSlotList(NULL) count query", rv, CKR_OK);
	check(n >= 1, "C_GetSlotList count >= 1: got %lu", (unsigned long)n);
	CK_SLOT_ID slots[64];
	CK_ULONG n2 = n;
	rv = f->C_GetSlotList(CK_TRUE, slots, &n2);
	check_rv("C_GetSlotList(buffer)", rv, CKR_OK);
	check(n2 == n, "C_GetSlotList fill returns the queried count: got %lu want %lu", (unsigned long)n2,
	      (unsigned long)n);
	if (n >= 2) {
		CK_ULONG n3 = n - 1;
		rv = f->C_GetSlotList(CK_TRUE, slots, &n3);
		check_rv("C_GetSlotList with room for one slot too few", rv, CKR_BUFFER_TOO_SMALL);
		check(n3 == n, "C_GetSlotList BUFFER_TOO_SMALL reports the needed count: got %lu want %lu",
		      (unsigned long)n3, (unsigned long)n);
	}

	CK_SLOT_ID slot = 0;
	rv = find_token_slot(f, &slot);
	if (!check_rv("find a slot with an initialized token", rv, CKR_OK))
		return finish();
	CK_TOKEN_INFO ti;
	rv = f->C_GetTokenInfo(slot, &ti);
	check_rv("C_GetTokenInfo", rv, CKR_OK);
	{
		char label[33];
		trim(ti.label, 32, label);
		note("token \"%s\" in slot %lu, flags 0x%lx", label, (unsigned long)slot, (unsigned long)ti.flags);
		check((ti.flags & CKF_USER_PIN_INITIALIZED) != 0, "token has CKF_USER_PIN_INITIALIZED: flags 0x%lx",
		      (unsigned long)ti.flags);
	}

	CK_SESSION_HANDLE s = CK_INVALID_HANDLE;
	rv = f->C_OpenSession(slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &s);
	if (!check_rv("C_OpenSession RW", rv, CKR_OK))
		return finish();
	rv = f->C_Login(s, CKU_USER, (CK_UTF8CHAR_PTR) "wrong-pin-0000", 14);
	check_rv("C_Login with a wrong PIN", rv, CKR_PIN_INCORRECT);
	rv = f->C_Login(s, CKU_USER, (CK_UTF8CHAR_PTR)pin, strlen(pin));
	check_rv("C_Login USER", rv, CKR_OK);
	CK_SESSION_INFO si;
	rv = f->C_GetSessionInfo(s, &si);
	check_rv("C_GetSessionInfo", rv, CKR_OK);
	check(si.state == CKS_RW_USER_FUNCTIONS && si.slotID == slot,
	      "session state is CKS_RW_USER_FUNCTIONS in the token's slot: got state %lu slot %lu",
	      (unsigned long)si.state, (unsigned long)si.slotID);

	/* Keys */
	CK_OBJECT_HANDLE ec_pub = 0, ec_priv = 0;
	rv = gen_ec(f, s, "p11test-ec", &no, &ec_pub, &ec_priv);
	check_rv("C_GenerateKeyPair EC P-256", rv, CKR_OK);

	CK_OBJECT_HANDLE rsa_pub = 0, rsa_priv = 0;
	{
		CK_MECHANISM m = { CKM_RSA_PKCS_KEY_PAIR_GEN, NULL, 0 };
		CK_ULONG bits = 2048;
		const char *label = "p11test-rsa";
		CK_ATTRIBUTE pubt[] = {
			{ CKA_MODULUS_BITS, &bits, sizeof(bits) },
			{ CKA_PUBLIC_EXPONENT, (void *)rsa_exp, sizeof(rsa_exp) },
			{ CKA_VERIFY, &yes, sizeof(yes) },
			{ CKA_TOKEN, &no, sizeof(no) },
			{ CKA_LABEL, (void *)label, strlen(label) },
		};
		CK_ATTRIBUTE privt[] = {
			{ CKA_SIGN, &yes, sizeof(yes) },
			{ CKA_PRIVATE, &yes, sizeof(yes) },
			{ CKA_SENSITIVE, &yes, sizeof(yes) },
			{ CKA_TOKEN, &no, sizeof(no) },
			{ CKA_LABEL, (void *)label, strlen(label) },
		};
		rv = f->C_GenerateKeyPair(s, &m, pubt, 5, privt, 5, &rsa_pub, &rsa_priv);
		check_rv("C_GenerateKeyPair RSA-2048", rv, CKR_OK);
		CK_BYTE modulus[512];
		CK_ATTRIBUTE a = { CKA_MODULUS, modulus, sizeof(modulus) };
		rv = f->C_GetAttributeValue(s, rsa_pub, &a, 1);
		check_rv("C_GetAttributeValue CKA_MODULUS", rv, CKR_OK);
		check(a.ulValueLen == 256, "RSA modulus is 256 bytes: got %lu", (unsigned long)a.ulValueLen);
	}

	/* Digest */
	CK_BYTE digest[64];
	CK_ULONG dlen = 0;
	{
		CK_MECHANISM m = { CKM_SHA256, NULL, 0 };
		rv = f->C_DigestInit(s, &m);
		check_rv("C_DigestInit SHA-256", rv, CKR_OK);
		rv = f->C_Digest(s, (CK_BYTE_PTR) "abc", 3, NULL, &dlen);
		check_rv("C_Digest length query", rv, CKR_OK);
		check(dlen == 32, "C_Digest length query says 32: got %lu", (unsigned long)dlen);
		dlen = sizeof(digest);
		rv = f->C_Digest(s, (CK_BYTE_PTR) "abc", 3, digest, &dlen);
		check_rv("C_Digest", rv, CKR_OK);
		check(dlen == 32 && memcmp(digest, sha256_abc, 32) == 0, "C_Digest(\"abc\") is the known SHA-256 (len %lu)",
		      (unsigned long)dlen);
		/* multi-part gives the same */
		CK_BYTE d2[64];
		CK_ULONG d2len = sizeof(d2);
		rv = f->C_DigestInit(s, &m);
		if (rv == CKR_OK)
			rv = f->C_DigestUpdate(s, (CK_BYTE_PTR) "a", 1);
		if (rv == CKR_OK)
			rv = f->C_DigestUpdate(s, (CK_BYTE_PTR) "bc", 2);
		if (rv == CKR_OK)
			rv = f->C_DigestFinal(s, d2, &d2len);
		check_rv("C_DigestInit/Update/Update/Final", rv, CKR_OK);
		check(d2len == 32 && memcmp(d2, sha256_abc, 32) == 0, "multi-part digest equals the known SHA-256");
	}

	/* ECDSA */
	{
		CK_MECHANISM m = { CKM_ECDSA, NULL, 0 };
		CK_BYTE sig[128];
		CK_ULONG siglen = sizeof(sig);
		rv = f->C_SignInit(s, &m, ec_priv);
		check_rv("C_SignInit CKM_ECDSA", rv, CKR_OK);
		rv = f->C_Sign(s, digest, 32, sig, &siglen);
		check_rv("C_Sign CKM_ECDSA", rv, CKR_OK);
		check(siglen == 64, "ECDSA P-256 signature is 64 bytes: got %lu", (unsigned long)siglen);
		rv = f->C_VerifyInit(s, &m, ec_pub);
		check_rv("C_VerifyInit CKM_ECDSA", rv, CKR_OK);
		rv = f->C_Verify(s, digest, 32, sig, siglen);
		check_rv("C_Verify ECDSA signature", rv, CKR_OK);
		sig[siglen / 2] ^= 0x01;
		rv = f->C_VerifyInit(s, &m, ec_pub);
		check_rv("C_VerifyInit CKM_ECDSA (again)", rv, CKR_OK);
		rv = f->C_Verify(s, digest, 32, sig, siglen);
		check_rv("C_Verify ECDSA signature with a flipped byte", rv, CKR_SIGNATURE_INVALID);
	}

	/* RSA with length queries */
	{
		CK_MECHANISM m = { CKM_SHA256_RSA_PKCS, NULL, 0 };
		const char *msg = "p11test message to sign with RSA";
		CK_BYTE sig[512];
		CK_ULONG siglen = 0;
		rv = f->C_SignInit(s, &m, rsa_priv);
		check_rv("C_SignInit CKM_SHA256_RSA_PKCS", rv, CKR_OK);
		rv = f->C_Sign(s, (CK_BYTE_PTR)msg, strlen(msg), NULL, &siglen);
		check_rv("C_Sign RSA length query (NULL buffer)", rv, CKR_OK);
		check(siglen == 256, "C_Sign RSA length query says 256: got %lu", (unsigned long)siglen);
		memset(sig, 0xAA, sizeof(sig));
		siglen = 10;
		rv = f->C_Sign(s, (CK_BYTE_PTR)msg, strlen(msg), sig, &siglen);
		check_rv("C_Sign RSA with a 10-byte buffer", rv, CKR_BUFFER_TOO_SMALL);
		check(siglen == 256, "C_Sign BUFFER_TOO_SMALL reports the needed length: got %lu want 256",
		      (unsigned long)siglen);
		int untouched = 1;
		for (size_t i = 0; i < sizeof(sig); i++)
			untouched &= sig[i] == 0xAA;
		check(untouched, "C_Sign BUFFER_TOO_SMALL wrote nothing into the buffer");
		siglen = sizeof(sig);
		rv = f->C_Sign(s, (CK_BYTE_PTR)msg, strlen(msg), sig, &siglen);
		check_rv("C_Sign RSA", rv, CKR_OK);
		check(siglen == 256, "RSA signature is 256 bytes: got %lu", (unsigned long)siglen);
		rv = f->C_VerifyInit(s, &m, rsa_pub);
		check_rv("C_VerifyInit CKM_SHA256_RSA_PKCS", rv, CKR_OK);
		rv = f->C_Verify(s, (CK_BYTE_PTR)msg, strlen(msg), sig, siglen);
		check_rv("C_Verify RSA signature", rv, CKR_OK);
		sig[7] ^= 0x80;
		rv = f->C_VerifyInit(s, &m, rsa_pub);
		if (rv == CKR_OK)
			rv = f->C_Verify(s, (CK_BYTE_PTR)msg, strlen(msg), sig, siglen);
		check_rv("C_Verify RSA signature with a flipped byte", rv, CKR_SIGNATURE_INVALID);
	}

	/* AES-256 CBC-PAD */
	{
		CK_MECHANISM gm = { CKM_AES_KEY_GEN, NULL, 0 };
		CK_ULONG klen = 32;
		const char *label = "p11test-aes";
		CK_ATTRIBUTE t[] = {
			{ CKA_VALUE_LEN, &klen, sizeof(klen) },	  { CKA_ENCRYPT, &yes, sizeof(yes) },
			{ CKA_DECRYPT, &yes, sizeof(yes) },	  { CKA_TOKEN, &no, sizeof(no) },
			{ CKA_LABEL, (void *)label, strlen(label) },
		};
		CK_OBJECT_HANDLE key = 0;
		rv = f->C_GenerateKey(s, &gm, t, 5, &key);
		check_rv("C_GenerateKey AES-256", rv, CKR_OK);

		CK_BYTE iv[16];
		for (int i = 0; i < 16; i++)
			iv[i] = (CK_BYTE)(0xA0 + i);
		CK_MECHANISM m = { CKM_AES_CBC_PAD, iv, sizeof(iv) };
		CK_BYTE pt[37];
		for (int i = 0; i < 37; i++)
			pt[i] = (CK_BYTE)(i * 7 + 3);
		CK_BYTE ct[128], ct2[128], back[128];
		CK_ULONG ctlen = 0;
		rv = f->C_EncryptInit(s, &m, key);
		check_rv("C_EncryptInit CKM_AES_CBC_PAD", rv, CKR_OK);
		rv = f->C_Encrypt(s, pt, sizeof(pt), NULL, &ctlen);
		check_rv("C_Encrypt length query", rv, CKR_OK);
		check(ctlen == 48, "C_Encrypt length query says 48: got %lu", (unsigned long)ctlen);
		ctlen = sizeof(ct);
		rv = f->C_Encrypt(s, pt, sizeof(pt), ct, &ctlen);
		check_rv("C_Encrypt AES-CBC-PAD", rv, CKR_OK);
		check(ctlen == 48, "ciphertext is 48 bytes: got %lu", (unsigned long)ctlen);

		/* multi-part encryption gives the same ciphertext */
		CK_ULONG l1 = sizeof(ct2), l2 = 0;
		rv = f->C_EncryptInit(s, &m, key);
		if (rv == CKR_OK)
			rv = f->C_EncryptUpdate(s, pt, 20, ct2, &l1);
		if (rv == CKR_OK) {
			l2 = sizeof(ct2) - l1;
			CK_ULONG l3 = l2;
			rv = f->C_EncryptUpdate(s, pt + 20, sizeof(pt) - 20, ct2 + l1, &l3);
			l1 += l3;
			l2 = sizeof(ct2) - l1;
		}
		if (rv == CKR_OK)
			rv = f->C_EncryptFinal(s, ct2 + l1, &l2);
		check_rv("C_EncryptInit/Update/Update/Final", rv, CKR_OK);
		check(l1 + l2 == ctlen && memcmp(ct, ct2, ctlen) == 0,
		      "multi-part ciphertext equals single-part (%lu bytes)", (unsigned long)(l1 + l2));

		CK_ULONG blen = 0;
		rv = f->C_DecryptInit(s, &m, key);
		check_rv("C_DecryptInit CKM_AES_CBC_PAD", rv, CKR_OK);
		rv = f->C_Decrypt(s, ct, ctlen, NULL, &blen);
		check_rv("C_Decrypt length query", rv, CKR_OK);
		check(blen >= sizeof(pt) && blen <= ctlen, "C_Decrypt length query in [37, 48]: got %lu",
		      (unsigned long)blen);
		blen = sizeof(back);
		rv = f->C_Decrypt(s, ct, ctlen, back, &blen);
		check_rv("C_Decrypt AES-CBC-PAD", rv, CKR_OK);
		check(blen == sizeof(pt) && memcmp(back, pt, sizeof(pt)) == 0,
		      "decrypted bytes equal the plaintext (len %lu)", (unsigned long)blen);
	}

	/* Random */
	{
		CK_BYTE r1[32], r2[32], zero[32];
		memset(r1, 0, sizeof(r1));
		memset(r2, 0, sizeof(r2));
		memset(zero, 0, sizeof(zero));
		rv = f->C_GenerateRandom(s, r1, sizeof(r1));
		check_rv("C_GenerateRandom(32)", rv, CKR_OK);
		rv = f->C_GenerateRandom(s, r2, sizeof(r2));
		check_rv("C_GenerateRandom(32) again", rv, CKR_OK);
		check(memcmp(r1, zero, 32) != 0 && memcmp(r1, r2, 32) != 0, "random bytes are non-zero and differ");
		CK_BYTE big[100000];
		rv = f->C_GenerateRandom(s, big, sizeof(big));
		check_rv("C_GenerateRandom(100000)", rv, CKR_OK);
	}

	/* Find */
	{
		CK_OBJECT_HANDLE found[10];
		CK_ULONG cnt = 0;
		rv = find_objects(f, s, "p11test-ec", CKO_PRIVATE_KEY, found, 10, &cnt);
		check_rv("C_FindObjectsInit/FindObjects/Final by label and class", rv, CKR_OK);
		check(cnt == 1 && found[0] == ec_priv, "found exactly the EC private key: got %lu objects", (unsigned long)cnt);
		rv = find_objects(f, s, "p11test-ec", (CK_OBJECT_CLASS)-1, found, 10, &cnt);
		check_rv("C_FindObjects by label", rv, CKR_OK);
		check(cnt == 2, "label p11test-ec names 2 objects: got %lu", (unsigned long)cnt);
		/* one at a time */
		CK_ATTRIBUTE t = { CKA_LABEL, (void *)"p11test-ec", 10 };
		CK_ULONG total = 0, got = 0;
		rv = f->C_FindObjectsInit(s, &t, 1);
		while (rv == CKR_OK) {
			rv = f->C_FindObjects(s, found, 1, &got);
			if (rv != CKR_OK || got == 0)
				break;
			total += got;
		}
		CK_RV rv2 = f->C_FindObjectsFinal(s);
		check(rv == CKR_OK && rv2 == CKR_OK && total == 2,
		      "C_FindObjects one handle at a time: got %lu objects (%s, %s) want 2", (unsigned long)total,
		      rvs(rv), rvs(rv2));
	}

	/* Many handles from one C_FindObjects call */
	{
		enum { NOBJ = 7 };
		CK_OBJECT_HANDLE made[NOBJ], found[16];
		CK_OBJECT_CLASS dcls = CKO_DATA;
		const char *label = "p11test-many";
		int created = 1;
		for (int i = 0; i < NOBJ; i++) {
			CK_BYTE v = (CK_BYTE)i;
			CK_ATTRIBUTE t[] = {
				{ CKA_CLASS, &dcls, sizeof(dcls) },
				{ CKA_TOKEN, &no, sizeof(no) },
				{ CKA_LABEL, (void *)label, strlen(label) },
				{ CKA_VALUE, &v, 1 },
			};
			if (f->C_CreateObject(s, t, 4, &made[i]) != CKR_OK)
				created = 0;
		}
		check(created, "C_CreateObject %d data objects labelled %s", NOBJ, label);
		for (CK_ULONG max = 1; max <= 16; max *= 4) {
			CK_ULONG cnt = 0, total = 0;
			CK_OBJECT_HANDLE all[16];
			CK_ATTRIBUTE t = { CKA_LABEL, (void *)label, strlen(label) };
			rv = f->C_FindObjectsInit(s, &t, 1);
			while (rv == CKR_OK && total < 16) {
				for (int i = 0; i < 16; i++)
					found[i] = 0xdeadbeef;
				rv = f->C_FindObjects(s, found, max, &cnt);
				if (rv != CKR_OK || cnt == 0)
					break;
				for (CK_ULONG i = 0; i < cnt && total < 16; i++)
					all[total++] = found[i];
			}
			f->C_FindObjectsFinal(s);
			int match = total == NOBJ;
			for (int j = 0; j < NOBJ; j++) { /* each created handle exactly once */
				int times = 0;
				for (CK_ULONG i = 0; i < total; i++)
					times += all[i] == made[j];
				match &= times == 1;
			}
			char got[400];
			size_t used = 0;
			got[0] = '\0';
			for (CK_ULONG i = 0; i < total; i++) {
				int in = 0;
				for (int j = 0; j < NOBJ; j++)
					in |= all[i] == made[j];
				match &= in;
				if (used < sizeof(got))
					used += (size_t)snprintf(got + used, sizeof(got) - used, "%s0x%lx%s", i ? " " : "",
								 (unsigned long)all[i], in ? "" : "(!)");
			}
			check(rv == CKR_OK && match,
			      "C_FindObjects with ulMaxObjectCount %lu returns each of the %d created handles once: %s, %lu handles [%s]",
			      (unsigned long)max, NOBJ, rvs(rv), (unsigned long)total, got);
		}
		for (int i = 0; i < NOBJ; i++)
			f->C_DestroyObject(s, made[i]);
	}

	/* Attributes */
	{
		CK_ATTRIBUTE a = { CKA_LABEL, NULL, 0 };
		rv = f->C_GetAttributeValue(s, ec_priv, &a, 1);
		check_rv("C_GetAttributeValue CKA_LABEL length query", rv, CKR_OK);
		check(a.ulValueLen == 10, "CKA_LABEL length is 10: got %lu", (unsigned long)a.ulValueLen);
		char label[64];
		memset(label, 0, sizeof(label));
		a.pValue = label;
		a.ulValueLen = sizeof(label) - 1;
		rv = f->C_GetAttributeValue(s, ec_priv, &a, 1);
		check_rv("C_GetAttributeValue CKA_LABEL", rv, CKR_OK);
		check(a.ulValueLen == 10 && strcmp(label, "p11test-ec") == 0, "CKA_LABEL reads back \"%s\"", label);
		a.ulValueLen = 3;
		rv = f->C_GetAttributeValue(s, ec_priv, &a, 1);
		check_rv("C_GetAttributeValue CKA_LABEL into 3 bytes", rv, CKR_BUFFER_TOO_SMALL);
		check(a.ulValueLen == CK_UNAVAILABLE_INFORMATION, "too-small attribute length is CK_UNAVAILABLE_INFORMATION: got 0x%lx",
		      (unsigned long)a.ulValueLen);
		CK_BYTE v[256];
		CK_ATTRIBUTE sv = { CKA_VALUE, v, sizeof(v) };
		rv = f->C_GetAttributeValue(s, ec_priv, &sv, 1);
		check_rv("C_GetAttributeValue CKA_VALUE of a sensitive key", rv, CKR_ATTRIBUTE_SENSITIVE);
		check(sv.ulValueLen == CK_UNAVAILABLE_INFORMATION, "sensitive CKA_VALUE length is CK_UNAVAILABLE_INFORMATION: got 0x%lx",
		      (unsigned long)sv.ulValueLen);
		CK_BYTE params[64];
		CK_KEY_TYPE kt = 0;
		CK_ATTRIBUTE two[] = { { CKA_EC_PARAMS, params, sizeof(params) }, { CKA_KEY_TYPE, &kt, sizeof(kt) } };
		rv = f->C_GetAttributeValue(s, ec_pub, two, 2);
		check_rv("C_GetAttributeValue CKA_EC_PARAMS + CKA_KEY_TYPE", rv, CKR_OK);
		check(two[0].ulValueLen == sizeof(p256_oid) && memcmp(params, p256_oid, sizeof(p256_oid)) == 0 && kt == CKK_EC,
		      "EC public key has the P-256 OID and CKK_EC");
		hex(params, two[0].ulValueLen < 64 ? two[0].ulValueLen : 0, txt, sizeof(txt));
		note("CKA_EC_PARAMS %s", txt);
	}

	rv = f->C_Logout(s);
	check_rv("C_Logout", rv, CKR_OK);
	rv = f->C_CloseSession(s);
	check_rv("C_CloseSession", rv, CKR_OK);
	rv = f->C_GenerateRandom(s, (CK_BYTE_PTR)txt, 8);
	check_rv("C_GenerateRandom on the closed session", rv, CKR_SESSION_HANDLE_INVALID);
	rv = f->C_Finalize(NULL);
	check_rv("C_Finalize", rv, CKR_OK);
	rv = f->C_GetSlotList(CK_TRUE, NULL, &n);
	check_rv("C_GetSlotList after C_Finalize", rv, CKR_CRYPTOKI_NOT_INITIALIZED);

	/* Second cycle */
	rv = f->C_Initialize(NULL);
	check_rv("second C_Initialize(NULL)", rv, CKR_OK);
	rv = find_token_slot(f, &slot);
	check_rv("second cycle: find the token slot", rv, CKR_OK);
	CK_SESSION_HANDLE first_cycle = s; /* the variable is reused, as applications do */
	rv = f->C_OpenSession(slot, CKF_SERIAL_SESSION, NULL, NULL, &s);
	check_rv("second cycle: C_OpenSession RO into the variable of the first cycle's session", rv, CKR_OK);
	{
		CK_SESSION_INFO si2;
		CK_RV rv2 = f->C_GetSessionInfo(s, &si2);
		check(rv2 == CKR_OK,
		      "second cycle: the new session handle works (the variable held 0x%lx, now 0x%lx): C_GetSessionInfo %s",
		      (unsigned long)first_cycle, (unsigned long)s, rvs(rv2));
	}
	rv = f->C_GenerateRandom(s, (CK_BYTE_PTR)txt, 16);
	check_rv("second cycle: C_GenerateRandom", rv, CKR_OK);
	CK_OBJECT_HANDLE found[4];
	CK_ULONG cnt = 9;
	rv = find_objects(f, s, "p11test-ec", (CK_OBJECT_CLASS)-1, found, 4, &cnt);
	check(rv == CKR_OK && cnt == 0, "second cycle: the session keys of the first cycle are gone: %s, %lu objects",
	      rvs(rv), (unsigned long)cnt);
	bulk_find(f, slot);
	rv = f->C_Finalize(NULL);
	check_rv("second cycle: C_Finalize", rv, CKR_OK);
	return finish();
}

/* ------------------------------------------------------------------ */
/* compare                                                             */

struct rec {
	char name[96];
	CK_RV rv;
	CK_BYTE out[1024];
	size_t outlen;
	int mech; /* a GetMechanismInfo record: summarized */
};

struct recs {
	struct rec *r;
	int n, cap;
};

__attribute__((format(printf, 6, 7))) static void rec_add(struct recs *rs, CK_RV rv, const void *out, size_t outlen,
							  int mech, const char *fmt, ...)
{
	if (rs->n == rs->cap) {
		rs->cap = rs->cap ? rs->cap * 2 : 256;
		rs->r = realloc(rs->r, (size_t)rs->cap * sizeof(*rs->r));
	}
	struct rec *r = &rs->r[rs->n++];
	memset(r, 0, sizeof(*r));
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(r->name, sizeof(r->name), fmt, ap);
	va_end(ap);
	r->rv = rv;
	r->mech = mech;
	if (out && outlen) {
		r->outlen = outlen < sizeof(r->out) ? outlen : sizeof(r->out);
		memcpy(r->out, out, r->outlen);
	}
}

/* compare_params: calls whose mechanisms carry parameter structures (with
 * pointers inside), key wrapping and derivation, the odd corners of output
 * buffers and templates. key is a non-sensitive AES-256 key with a fixed
 * value, allowed to encrypt, decrypt and derive. */
static void compare_params(CK_FUNCTION_LIST_PTR f, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE key, struct recs *rs)
{
	CK_RV rv;
	CK_BYTE pt[41], out[512], back[512];
	CK_ULONG ol, bl;
	for (int i = 0; i < (int)sizeof(pt); i++)
		pt[i] = (CK_BYTE)(i * 3 + 1);

	/* AES-GCM: CK_GCM_PARAMS holds two pointers */
	{
		CK_BYTE iv[12], aad[13];
		for (int i = 0; i < 12; i++)
			iv[i] = (CK_BYTE)(0x10 + i);
		for (int i = 0; i < 13; i++)
			aad[i] = (CK_BYTE)(0x70 + i);
		CK_GCM_PARAMS gp = { iv, sizeof(iv), 96, aad, sizeof(aad), 128 };
		CK_MECHANISM m = { CKM_AES_GCM, &gp, sizeof(gp) };
		ol = sizeof(out);
		rv = f->C_EncryptInit(s, &m, key);
		if (rv == CKR_OK)
			rv = f->C_Encrypt(s, pt, sizeof(pt), out, &ol);
		rec_add(rs, rv, out, rv == CKR_OK ? ol : 0, 0, "AES-GCM encrypt with IV and AAD (ciphertext+tag)");
		bl = sizeof(back);
		CK_ULONG ctlen = rv == CKR_OK ? ol : 0;
		rv = f->C_DecryptInit(s, &m, key);
		if (rv == CKR_OK)
			rv = f->C_Decrypt(s, out, ctlen, back, &bl);
		rec_add(rs, rv, back, rv == CKR_OK ? bl : 0, 0, "AES-GCM decrypt (plaintext)");
		if (ctlen > 0)
			out[ctlen - 1] ^= 0x01;
		bl = sizeof(back);
		rv = f->C_DecryptInit(s, &m, key);
		if (rv == CKR_OK)
			rv = f->C_Decrypt(s, out, ctlen, back, &bl);
		rec_add(rs, rv, NULL, 0, 0, "AES-GCM decrypt with a corrupted tag");
		CK_MECHANISM shortm = { CKM_AES_GCM, &gp, sizeof(gp) - 8 };
		rv = f->C_EncryptInit(s, &shortm, key);
		rec_add(rs, rv, NULL, 0, 0, "AES-GCM with a parameter of the wrong size");
		if (rv == CKR_OK) {
			ol = sizeof(out);
			f->C_Encrypt(s, pt, sizeof(pt), out, &ol);
		}
		CK_MECHANISM nullp = { CKM_AES_GCM, NULL, 0 };
		rv = f->C_EncryptInit(s, &nullp, key);
		rec_add(rs, rv, NULL, 0, 0, "AES-GCM without a parameter");
		if (rv == CKR_OK) {
			ol = sizeof(out);
			f->C_Encrypt(s, pt, sizeof(pt), out, &ol);
		}
	}
	/* AES-CTR: an inline counter block */
	{
		CK_AES_CTR_PARAMS cp;
		memset(&cp, 0, sizeof(cp));
		cp.counter_bits = 32;
		for (int i = 0; i < 16; i++)
			cp.cb[i] = (CK_BYTE)(0xC0 + i);
		CK_MECHANISM m = { CKM_AES_CTR, &cp, sizeof(cp) };
		ol = sizeof(out);
		rv = f->C_EncryptInit(s, &m, key);
		if (rv == CKR_OK)
			rv = f->C_Encrypt(s, pt, 23, out, &ol);
		rec_add(rs, rv, out, rv == CKR_OK ? ol : 0, 0, "AES-CTR encrypt (ciphertext)");
	}
	/* AES-CBC with an IV of the wrong length */
	{
		CK_BYTE iv[8] = { 0 };
		CK_MECHANISM m = { CKM_AES_CBC, iv, sizeof(iv) };
		rv = f->C_EncryptInit(s, &m, key);
		rec_add(rs, rv, NULL, 0, 0, "AES-CBC with an 8-byte IV");
		if (rv == CKR_OK) {
			ol = sizeof(out);
			f->C_Encrypt(s, pt, 16, out, &ol);
		}
	}
	/* multi-part AES-CBC with a NULL output for the length */
	{
		CK_BYTE iv[16];
		for (int i = 0; i < 16; i++)
			iv[i] = (CK_BYTE)i;
		CK_MECHANISM m = { CKM_AES_CBC, iv, sizeof(iv) };
		CK_ULONG l1 = 0, l2 = sizeof(out);
		rv = f->C_EncryptInit(s, &m, key);
		if (rv == CKR_OK)
			rv = f->C_EncryptUpdate(s, pt, 32, NULL, &l1);
		rec_add(rs, rv, &l1, sizeof(l1), 0, "C_EncryptUpdate length query");
		l1 = sizeof(out);
		if (rv == CKR_OK)
			rv = f->C_EncryptUpdate(s, pt, 32, out, &l1);
		if (rv == CKR_OK)
			rv = f->C_EncryptFinal(s, out + l1, &l2);
		rec_add(rs, rv, out, rv == CKR_OK ? l1 + l2 : 0, 0, "AES-CBC multi-part (ciphertext)");
	}
	/* derivation with CK_KEY_DERIVATION_STRING_DATA */
	{
		CK_BYTE data[32];
		for (int i = 0; i < 32; i++)
			data[i] = (CK_BYTE)(0x55 ^ i);
		CK_KEY_DERIVATION_STRING_DATA sd = { data, sizeof(data) };
		CK_MECHANISM m = { CKM_AES_ECB_ENCRYPT_DATA, &sd, sizeof(sd) };
		CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
		CK_KEY_TYPE kt = CKK_AES;
		CK_ULONG vlen = 32;
		CK_ATTRIBUTE t[] = {
			{ CKA_CLASS, &cls, sizeof(cls) }, { CKA_KEY_TYPE, &kt, sizeof(kt) },
			{ CKA_VALUE_LEN, &vlen, sizeof(vlen) }, { CKA_SENSITIVE, &no, sizeof(no) },
			{ CKA_EXTRACTABLE, &yes, sizeof(yes) }, { CKA_TOKEN, &no, sizeof(no) },
		};
		CK_OBJECT_HANDLE dk = 0;
		rv = f->C_DeriveKey(s, &m, key, t, 6, &dk);
		rec_add(rs, rv, NULL, 0, 0, "C_DeriveKey CKM_AES_ECB_ENCRYPT_DATA");
		CK_BYTE v[64];
		CK_ATTRIBUTE a = { CKA_VALUE, v, sizeof(v) };
		if (rv == CKR_OK)
			rv = f->C_GetAttributeValue(s, dk, &a, 1);
		rec_add(rs, rv, v, rv == CKR_OK ? a.ulValueLen : 0, 0, "derived key's CKA_VALUE");
	}
	/* wrap and unwrap with AES key wrap */
	{
		CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
		CK_KEY_TYPE kt = CKK_AES;
		CK_BYTE wv[16];
		for (int i = 0; i < 16; i++)
			wv[i] = (CK_BYTE)(0xE0 + i);
		CK_ATTRIBUTE t[] = {
			{ CKA_CLASS, &cls, sizeof(cls) }, { CKA_KEY_TYPE, &kt, sizeof(kt) }, { CKA_VALUE, wv, sizeof(wv) },
			{ CKA_WRAP, &yes, sizeof(yes) },  { CKA_UNWRAP, &yes, sizeof(yes) }, { CKA_TOKEN, &no, sizeof(no) },
		};
		CK_OBJECT_HANDLE wk = 0;
		rv = f->C_CreateObject(s, t, 6, &wk);
		rec_add(rs, rv, NULL, 0, 0, "C_CreateObject AES-128 wrapping key");
		CK_MECHANISM m = { CKM_AES_KEY_WRAP, NULL, 0 };
		CK_ULONG wl = 0;
		rv = f->C_WrapKey(s, &m, wk, key, NULL, &wl);
		rec_add(rs, rv, &wl, sizeof(wl), 0, "C_WrapKey length query");
		CK_BYTE wrapped[128];
		wl = sizeof(wrapped);
		rv = f->C_WrapKey(s, &m, wk, key, wrapped, &wl);
		rec_add(rs, rv, wrapped, rv == CKR_OK ? wl : 0, 0, "C_WrapKey CKM_AES_KEY_WRAP (wrapped bytes)");
		CK_ULONG vlen = 32;
		CK_ATTRIBUTE ut[] = {
			{ CKA_CLASS, &cls, sizeof(cls) },	{ CKA_KEY_TYPE, &kt, sizeof(kt) },
			{ CKA_SENSITIVE, &no, sizeof(no) },	{ CKA_EXTRACTABLE, &yes, sizeof(yes) },
			{ CKA_TOKEN, &no, sizeof(no) },		{ CKA_VALUE_LEN, &vlen, sizeof(vlen) },
		};
		CK_OBJECT_HANDLE uk = 0;
		rv = f->C_UnwrapKey(s, &m, wk, wrapped, rv == CKR_OK ? wl : 0, ut, 5, &uk);
		rec_add(rs, rv, NULL, 0, 0, "C_UnwrapKey");
		CK_BYTE v[64];
		CK_ATTRIBUTE a = { CKA_VALUE, v, sizeof(v) };
		if (rv == CKR_OK)
			rv = f->C_GetAttributeValue(s, uk, &a, 1);
		rec_add(rs, rv, v, rv == CKR_OK ? a.ulValueLen : 0, 0, "unwrapped key's CKA_VALUE");
		wrapped[3] ^= 0x40;
		rv = f->C_UnwrapKey(s, &m, wk, wrapped, wl, ut, 5, &uk);
		rec_add(rs, rv, NULL, 0, 0, "C_UnwrapKey of corrupted bytes");
	}
	/* RSA with OAEP and PSS parameters (randomized: compare results only) */
	{
		CK_MECHANISM gm = { CKM_RSA_PKCS_KEY_PAIR_GEN, NULL, 0 };
		CK_ULONG bits = 2048;
		CK_ATTRIBUTE pubt[] = {
			{ CKA_MODULUS_BITS, &bits, sizeof(bits) }, { CKA_PUBLIC_EXPONENT, (void *)rsa_exp, sizeof(rsa_exp) },
			{ CKA_ENCRYPT, &yes, sizeof(yes) },	   { CKA_VERIFY, &yes, sizeof(yes) },
			{ CKA_TOKEN, &no, sizeof(no) },
		};
		CK_ATTRIBUTE privt[] = {
			{ CKA_DECRYPT, &yes, sizeof(yes) },
			{ CKA_SIGN, &yes, sizeof(yes) },
			{ CKA_TOKEN, &no, sizeof(no) },
		};
		CK_OBJECT_HANDLE pub = 0, priv = 0;
		rv = f->C_GenerateKeyPair(s, &gm, pubt, 5, privt, 3, &pub, &priv);
		rec_add(rs, rv, NULL, 0, 0, "C_GenerateKeyPair RSA-2048 for OAEP/PSS");
		/* SoftHSM takes OAEP with SHA-1 and no label only */
		CK_RSA_PKCS_OAEP_PARAMS op = { CKM_SHA_1, CKG_MGF1_SHA1, CKZ_DATA_SPECIFIED, NULL, 0 };
		CK_MECHANISM m = { CKM_RSA_PKCS_OAEP, &op, sizeof(op) };
		ol = sizeof(out);
		rv = f->C_EncryptInit(s, &m, pub);
		if (rv == CKR_OK)
			rv = f->C_Encrypt(s, pt, sizeof(pt), out, &ol);
		rec_add(rs, rv, &ol, sizeof(ol), 0, "RSA-OAEP(SHA-1) encrypt: length");
		bl = sizeof(back);
		CK_ULONG ctlen = rv == CKR_OK ? ol : 0;
		rv = f->C_DecryptInit(s, &m, priv);
		if (rv == CKR_OK)
			rv = f->C_Decrypt(s, out, ctlen, back, &bl);
		rec_add(rs, rv, back, rv == CKR_OK ? bl : 0, 0, "RSA-OAEP decrypt (plaintext)");
		CK_BYTE label[] = "p11test-oaep-label";
		CK_RSA_PKCS_OAEP_PARAMS op2 = { CKM_SHA256, CKG_MGF1_SHA256, CKZ_DATA_SPECIFIED, label, sizeof(label) - 1 };
		CK_MECHANISM m2 = { CKM_RSA_PKCS_OAEP, &op2, sizeof(op2) };
		rv = f->C_DecryptInit(s, &m2, priv);
		rec_add(rs, rv, NULL, 0, 0, "RSA-OAEP(SHA-256, label) C_DecryptInit");
		if (rv == CKR_OK) {
			bl = sizeof(back);
			f->C_Decrypt(s, out, ctlen, back, &bl);
		}

		CK_RSA_PKCS_PSS_PARAMS pp = { CKM_SHA256, CKG_MGF1_SHA256, 32 };
		CK_MECHANISM pm = { CKM_SHA256_RSA_PKCS_PSS, &pp, sizeof(pp) };
		ol = sizeof(out);
		rv = f->C_SignInit(s, &pm, priv);
		if (rv == CKR_OK)
			rv = f->C_Sign(s, pt, sizeof(pt), out, &ol);
		rec_add(rs, rv, &ol, sizeof(ol), 0, "RSA-PSS(SHA-256) sign: length");
		rv = f->C_VerifyInit(s, &pm, pub);
		if (rv == CKR_OK)
			rv = f->C_Verify(s, pt, sizeof(pt), out, ol);
		rec_add(rs, rv, NULL, 0, 0, "RSA-PSS verify");
		rv = f->C_VerifyInit(s, &pm, pub);
		if (rv == CKR_OK)
			rv = f->C_Verify(s, pt, sizeof(pt) - 1, out, ol);
		rec_add(rs, rv, NULL, 0, 0, "RSA-PSS verify of other data");
		CK_BYTE n[300];
		CK_ULONG cls = 0;
		CK_ATTRIBUTE ta[] = {
			{ CKA_MODULUS, NULL, 0 },
			{ CKA_CLASS, &cls, sizeof(cls) },
			{ CKA_MODULUS, n, 5 },
			{ CKA_PRIVATE_EXPONENT, n, sizeof(n) },
		};
		rv = f->C_GetAttributeValue(s, pub, ta, 3);
		CK_ULONG lens[3] = { ta[0].ulValueLen, ta[1].ulValueLen, ta[2].ulValueLen };
		rec_add(rs, rv, lens, sizeof(lens), 0, "C_GetAttributeValue NULL + fits + too small: lengths");
		rec_add(rs, rv, &cls, sizeof(cls), 0, "C_GetAttributeValue NULL + fits + too small: the value that fit");
		rv = f->C_GetAttributeValue(s, pub, ta + 3, 1);
		rec_add(rs, rv, &ta[3].ulValueLen, sizeof(CK_ULONG), 0, "C_GetAttributeValue of an attribute the object lacks");
	}
	/* odd output arguments */
	{
		rv = f->C_GenerateRandom(s, NULL, 16);
		rec_add(rs, rv, NULL, 0, 0, "C_GenerateRandom with a NULL buffer");
		rv = f->C_GenerateRandom(s, out, 0);
		rec_add(rs, rv, NULL, 0, 0, "C_GenerateRandom of 0 bytes");
		CK_BYTE seed[8] = { 1, 2, 3, 4, 5, 6, 7, 8 };
		rv = f->C_SeedRandom(s, seed, sizeof(seed));
		rec_add(rs, rv, NULL, 0, 0, "C_SeedRandom");
		CK_MECHANISM m = { CKM_SHA256, NULL, 0 };
		rv = f->C_DigestInit(s, &m);
		if (rv == CKR_OK)
			rv = f->C_Digest(s, pt, sizeof(pt), out, NULL);
		rec_add(rs, rv, NULL, 0, 0, "C_Digest with a NULL pulDigestLen");
		ol = sizeof(out);
		f->C_Digest(s, pt, sizeof(pt), out, &ol); /* end the operation, if still active */
		rv = f->C_DigestInit(s, &m);
		if (rv == CKR_OK)
			rv = f->C_Digest(s, NULL, 0, out, &ol);
		rec_add(rs, rv, out, rv == CKR_OK ? ol : 0, 0, "C_Digest of empty data (NULL pointer)");
		ol = sizeof(out);
		rv = f->C_Digest(s, pt, 1, out, &ol); /* end the operation, if still active */
		rec_add(rs, rv, out, rv == CKR_OK ? ol : 0, 0, "C_Digest after that");
		/* outputs a failing call must leave alone */
		CK_ULONG untouched = 77;
		rv = f->C_Sign(s, pt, 16, out, &untouched);
		rec_add(rs, rv, &untouched, sizeof(untouched), 0, "C_Sign without C_SignInit: *pulSignatureLen after");
		untouched = 77;
		rv = f->C_GetMechanismList(0xdead0bad, NULL, &untouched);
		rec_add(rs, rv, &untouched, sizeof(untouched), 0, "C_GetMechanismList of a bad slot: *pulCount after");
		CK_ATTRIBUTE ua = { CKA_LABEL, out, 77 };
		rv = f->C_GetAttributeValue(s, 0x55555, &ua, 1);
		rec_add(rs, rv, &ua.ulValueLen, sizeof(CK_ULONG), 0, "C_GetAttributeValue of a bad handle: ulValueLen after");
		CK_OBJECT_HANDLE uo = 77;
		CK_ULONG ucnt = 77;
		rv = f->C_FindObjects(s, &uo, 1, &ucnt);
		CK_ULONG both[2] = { uo, ucnt };
		rec_add(rs, rv, both, sizeof(both), 0, "C_FindObjects without C_FindObjectsInit: outputs after");
		CK_ATTRIBUTE t = { CKA_CLASS, NULL, 0 };
		CK_OBJECT_HANDLE h[4];
		CK_ULONG cnt = 77;
		rv = f->C_FindObjectsInit(s, &t, 0);
		rec_add(rs, rv, NULL, 0, 0, "C_FindObjectsInit with an empty template");
		rv = f->C_FindObjects(s, h, 0, &cnt);
		rec_add(rs, rv, &cnt, sizeof(cnt), 0, "C_FindObjects with ulMaxObjectCount 0");
		rv = f->C_FindObjects(s, h, 4, &cnt);
		rec_add(rs, rv, &cnt, sizeof(cnt), 0, "C_FindObjects with an empty template: count");
		rv = f->C_FindObjects(s, h, 4, NULL);
		rec_add(rs, rv, NULL, 0, 0, "C_FindObjects with a NULL pulObjectCount");
		rv = f->C_FindObjects(s, NULL, 4, &cnt);
		rec_add(rs, rv, NULL, 0, 0, "C_FindObjects with a NULL phObject");
		f->C_FindObjectsFinal(s);
		rv = f->C_FindObjectsFinal(s);
		rec_add(rs, rv, NULL, 0, 0, "C_FindObjectsFinal twice");
		rv = f->C_GetFunctionStatus(s);
		rec_add(rs, rv, NULL, 0, 0, "C_GetFunctionStatus");
		rv = f->C_CancelFunction(s);
		rec_add(rs, rv, NULL, 0, 0, "C_CancelFunction");
		CK_SLOT_ID sl = 0;
		rv = f->C_WaitForSlotEvent(CKF_DONT_BLOCK, &sl, NULL);
		rec_add(rs, rv, NULL, 0, 0, "C_WaitForSlotEvent(CKF_DONT_BLOCK)");
		ol = 0;
		rv = f->C_GetOperationState(s, NULL, &ol);
		rec_add(rs, rv, NULL, 0, 0, "C_GetOperationState length query");
		CK_ULONG size = 0;
		rv = f->C_GetObjectSize(s, key, &size);
		rec_add(rs, rv, NULL, 0, 0, "C_GetObjectSize");
		CK_BYTE big[70000];
		memset(big, 0x5a, sizeof(big));
		CK_BYTE lbl[] = "p11test big data object";
		CK_OBJECT_CLASS dcls = CKO_DATA;
		CK_ATTRIBUTE dt[] = {
			{ CKA_CLASS, &dcls, sizeof(dcls) },
			{ CKA_TOKEN, &no, sizeof(no) },
			{ CKA_LABEL, lbl, sizeof(lbl) - 1 },
			{ CKA_VALUE, big, sizeof(big) },
		};
		CK_OBJECT_HANDLE dobj = 0;
		rv = f->C_CreateObject(s, dt, 4, &dobj);
		rec_add(rs, rv, NULL, 0, 0, "C_CreateObject 70000-byte data object");
		CK_BYTE *rb = calloc(1, sizeof(big));
		CK_ATTRIBUTE ga = { CKA_VALUE, rb, sizeof(big) };
		if (rv == CKR_OK)
			rv = f->C_GetAttributeValue(s, dobj, &ga, 1);
		int same = rv == CKR_OK && ga.ulValueLen == sizeof(big) && memcmp(rb, big, sizeof(big)) == 0;
		rec_add(rs, rv, &same, sizeof(same), 0, "70000-byte CKA_VALUE reads back intact");
		free(rb);
	}
}

/* run_sequence runs the deterministic comparison sequence against f. */
static void run_sequence(CK_FUNCTION_LIST_PTR f, const char *pin, struct recs *rs)
{
	CK_RV rv;
	CK_ULONG n = 0;
	CK_SLOT_ID slot = 0;
	CK_SESSION_HANDLE s = 0, s2 = 0;

	/* before C_Initialize */
	rv = f->C_GetSlotList(CK_TRUE, NULL, &n);
	rec_add(rs, rv, NULL, 0, 0, "C_GetSlotList before C_Initialize");
	CK_INFO info;
	rv = f->C_GetInfo(&info);
	rec_add(rs, rv, NULL, 0, 0, "C_GetInfo before C_Initialize");
	rv = f->C_OpenSession(0, CKF_SERIAL_SESSION, NULL, NULL, &s);
	rec_add(rs, rv, NULL, 0, 0, "C_OpenSession before C_Initialize");
	rv = f->C_Finalize(NULL);
	rec_add(rs, rv, NULL, 0, 0, "C_Finalize before C_Initialize");

	rv = init_locking(f);
	rec_add(rs, rv, NULL, 0, 0, "C_Initialize");
	if (rv != CKR_OK)
		return;
	rv = init_locking(f);
	rec_add(rs, rv, NULL, 0, 0, "second C_Initialize");
	rv = f->C_Initialize(NULL);
	rec_add(rs, rv, NULL, 0, 0, "third C_Initialize(NULL)");

	rv = f->C_GetSlotList(CK_TRUE, NULL, &n);
	rec_add(rs, rv, &n, sizeof(n), 0, "C_GetSlotList(present) count");
	rv = f->C_GetSlotList(CK_FALSE, NULL, &n);
	rec_add(rs, rv, &n, sizeof(n), 0, "C_GetSlotList(all) count");
	CK_SLOT_ID slots[64];
	n = 64;
	rv = f->C_GetSlotList(CK_TRUE, slots, &n);
	rec_add(rs, rv, slots, rv == CKR_OK ? n * sizeof(CK_SLOT_ID) : 0, 0, "C_GetSlotList(present) slot IDs");
	n = 0;
	rv = f->C_GetSlotList(CK_TRUE, slots, &n);
	rec_add(rs, rv, &n, sizeof(n), 0, "C_GetSlotList with a zero-length buffer");
	rv = f->C_GetSlotList(CK_TRUE, NULL, NULL);
	rec_add(rs, rv, NULL, 0, 0, "C_GetSlotList with NULL pulCount");

	rv = find_token_slot(f, &slot);
	rec_add(rs, rv, NULL, 0, 0, "find the initialized token's slot");
	if (rv != CKR_OK)
		goto out;

	CK_SLOT_INFO sli;
	rv = f->C_GetSlotInfo(slot, &sli);
	rec_add(rs, rv, &sli.flags, sizeof(sli.flags), 0, "C_GetSlotInfo flags");
	rv = f->C_GetSlotInfo(0xdead0bad, &sli);
	rec_add(rs, rv, NULL, 0, 0, "C_GetSlotInfo of a bad slot ID");
	rv = f->C_GetSlotInfo(slot, NULL);
	rec_add(rs, rv, NULL, 0, 0, "C_GetSlotInfo with a NULL pInfo");

	CK_TOKEN_INFO ti;
	rv = f->C_GetTokenInfo(slot, &ti);
	rec_add(rs, rv, ti.label, sizeof(ti.label), 0, "C_GetTokenInfo label");
	rec_add(rs, rv, &ti.flags, sizeof(ti.flags), 0, "C_GetTokenInfo flags");
	rec_add(rs, rv, ti.serialNumber, sizeof(ti.serialNumber), 0, "C_GetTokenInfo serialNumber");
	rec_add(rs, rv, ti.model, sizeof(ti.model), 0, "C_GetTokenInfo model");
	rv = f->C_GetTokenInfo(0xdead0bad, &ti);
	rec_add(rs, rv, NULL, 0, 0, "C_GetTokenInfo of a bad slot ID");

	CK_ULONG nm = 0;
	rv = f->C_GetMechanismList(slot, NULL, &nm);
	rec_add(rs, rv, &nm, sizeof(nm), 0, "C_GetMechanismList count");
	CK_MECHANISM_TYPE *mechs = calloc(nm + 1, sizeof(*mechs));
	CK_ULONG nm2 = nm ? nm - 1 : 0;
	if (nm > 1) {
		rv = f->C_GetMechanismList(slot, mechs, &nm2);
		rec_add(rs, rv, &nm2, sizeof(nm2), 0, "C_GetMechanismList with room for one too few");
	}
	nm2 = nm;
	rv = f->C_GetMechanismList(slot, mechs, &nm2);
	rec_add(rs, rv, mechs, rv == CKR_OK ? nm2 * sizeof(*mechs) : 0, 0, "C_GetMechanismList (same list)");
	for (CK_ULONG i = 0; rv == CKR_OK && i < nm2; i++) {
		CK_MECHANISM_INFO mi;
		memset(&mi, 0, sizeof(mi));
		CK_RV r2 = f->C_GetMechanismInfo(slot, mechs[i], &mi);
		rec_add(rs, r2, &mi, sizeof(mi), 1, "C_GetMechanismInfo(0x%lx)", (unsigned long)mechs[i]);
	}
	free(mechs);
	{
		CK_MECHANISM_INFO mi;
		rv = f->C_GetMechanismInfo(slot, 0x8badf00d, &mi);
		rec_add(rs, rv, NULL, 0, 0, "C_GetMechanismInfo of an unknown mechanism");
	}

	/* error cases around sessions */
	rv = f->C_OpenSession(slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, NULL);
	rec_add(rs, rv, NULL, 0, 0, "C_OpenSession with a NULL phSession");
	rv = f->C_OpenSession(slot, CKF_RW_SESSION, NULL, NULL, &s);
	rec_add(rs, rv, NULL, 0, 0, "C_OpenSession without CKF_SERIAL_SESSION");
	rv = f->C_OpenSession(0xdead0bad, CKF_SERIAL_SESSION, NULL, NULL, &s);
	rec_add(rs, rv, NULL, 0, 0, "C_OpenSession on a bad slot ID");
	{
		CK_BYTE b[8];
		rv = f->C_GenerateRandom(0x7777, b, sizeof(b));
		rec_add(rs, rv, NULL, 0, 0, "C_GenerateRandom on a bad session handle");
		rv = f->C_CloseSession(0x7777);
		rec_add(rs, rv, NULL, 0, 0, "C_CloseSession of a bad session handle");
		CK_SESSION_INFO si;
		rv = f->C_GetSessionInfo(0x7777, &si);
		rec_add(rs, rv, NULL, 0, 0, "C_GetSessionInfo of a bad session handle");
	}

	rv = f->C_OpenSession(slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &s);
	rec_add(rs, rv, NULL, 0, 0, "C_OpenSession RW");
	if (rv != CKR_OK)
		goto out;
	rv = f->C_OpenSession(slot, CKF_SERIAL_SESSION, NULL, NULL, &s2);
	rec_add(rs, rv, NULL, 0, 0, "C_OpenSession RO");
	{
		CK_SESSION_INFO si;
		rv = f->C_GetSessionInfo(s, &si);
		rec_add(rs, rv, &si.state, sizeof(si.state), 0, "C_GetSessionInfo state before login");
		rv = f->C_GetSessionInfo(s, NULL);
		rec_add(rs, rv, NULL, 0, 0, "C_GetSessionInfo with NULL pInfo");
	}
	rv = f->C_Login(s, 0x77, (CK_UTF8CHAR_PTR)pin, strlen(pin));
	rec_add(rs, rv, NULL, 0, 0, "C_Login with a bad user type");
	rv = f->C_Login(s, CKU_USER, (CK_UTF8CHAR_PTR)pin, strlen(pin));
	rec_add(rs, rv, NULL, 0, 0, "C_Login USER");
	rv = f->C_Login(s2, CKU_USER, (CK_UTF8CHAR_PTR)pin, strlen(pin));
	rec_add(rs, rv, NULL, 0, 0, "C_Login USER again on another session");
	{
		CK_SESSION_INFO si;
		rv = f->C_GetSessionInfo(s2, &si);
		rec_add(rs, rv, &si.state, sizeof(si.state), 0, "C_GetSessionInfo state of the RO session after login");
	}

	/* digest */
	{
		CK_MECHANISM m = { CKM_SHA256, NULL, 0 };
		const char *data = "The quick brown fox jumps over the lazy dog";
		CK_BYTE d[64];
		CK_ULONG dl = sizeof(d);
		rv = f->C_Digest(s, (CK_BYTE_PTR)data, strlen(data), d, &dl);
		rec_add(rs, rv, NULL, 0, 0, "C_Digest without C_DigestInit");
		rv = f->C_DigestInit(s, &m);
		rec_add(rs, rv, NULL, 0, 0, "C_DigestInit SHA-256");
		rv = f->C_DigestInit(s, &m);
		rec_add(rs, rv, NULL, 0, 0, "C_DigestInit while a digest is active");
		dl = 4;
		rv = f->C_Digest(s, (CK_BYTE_PTR)data, strlen(data), d, &dl);
		rec_add(rs, rv, &dl, sizeof(dl), 0, "C_Digest into 4 bytes");
		dl = sizeof(d);
		rv = f->C_Digest(s, (CK_BYTE_PTR)data, strlen(data), d, &dl);
		rec_add(rs, rv, d, rv == CKR_OK ? dl : 0, 0, "C_Digest SHA-256 of fixed data (bytes)");
		CK_MECHANISM bad = { 0x8badf00d, NULL, 0 };
		rv = f->C_DigestInit(s, &bad);
		rec_add(rs, rv, NULL, 0, 0, "C_DigestInit with an unknown mechanism");
	}

	/* AES-ECB with a fixed key from C_CreateObject */
	{
		CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
		CK_KEY_TYPE kt = CKK_AES;
		CK_BYTE value[32];
		for (int i = 0; i < 32; i++)
			value[i] = (CK_BYTE)(i * 11 + 5);
		CK_ATTRIBUTE t[] = {
			{ CKA_CLASS, &cls, sizeof(cls) },     { CKA_KEY_TYPE, &kt, sizeof(kt) },
			{ CKA_VALUE, value, sizeof(value) },  { CKA_ENCRYPT, &yes, sizeof(yes) },
			{ CKA_TOKEN, &no, sizeof(no) },	      { CKA_SENSITIVE, &no, sizeof(no) },
			{ CKA_EXTRACTABLE, &yes, sizeof(yes) }, { CKA_DECRYPT, &yes, sizeof(yes) },
			{ CKA_DERIVE, &yes, sizeof(yes) },
		};
		CK_OBJECT_HANDLE key = 0;
		rv = f->C_CreateObject(s, t, 9, &key);
		rec_add(rs, rv, NULL, 0, 0, "C_CreateObject AES-256 key");
		CK_ATTRIBUTE bad[] = { { CKA_CLASS, &cls, sizeof(cls) }, { CKA_KEY_TYPE, &kt, sizeof(kt) } };
		CK_OBJECT_HANDLE key2 = 0;
		rv = f->C_CreateObject(s, bad, 2, &key2);
		rec_add(rs, rv, NULL, 0, 0, "C_CreateObject AES key without CKA_VALUE");
		CK_MECHANISM m = { CKM_AES_ECB, NULL, 0 };
		CK_BYTE block[16], ct[64];
		for (int i = 0; i < 16; i++)
			block[i] = (CK_BYTE)(0xF0 - i);
		CK_ULONG cl = sizeof(ct);
		rv = f->C_EncryptInit(s, &m, key);
		rec_add(rs, rv, NULL, 0, 0, "C_EncryptInit CKM_AES_ECB");
		rv = f->C_Encrypt(s, block, sizeof(block), ct, &cl);
		rec_add(rs, rv, ct, rv == CKR_OK ? cl : 0, 0, "C_Encrypt AES-ECB of a fixed block (ciphertext)");
		rv = f->C_EncryptInit(s, &m, key);
		cl = sizeof(ct);
		if (rv == CKR_OK)
			rv = f->C_Encrypt(s, block, 15, ct, &cl);
		rec_add(rs, rv, NULL, 0, 0, "C_Encrypt AES-ECB of 15 bytes");
		CK_BYTE vbuf[64];
		CK_ATTRIBUTE get[] = { { CKA_VALUE, vbuf, sizeof(vbuf) }, { 0x8000fffful, vbuf + 40, 8 } };
		rv = f->C_GetAttributeValue(s, key, get, 2);
		rec_add(rs, rv, vbuf, get[0].ulValueLen <= 32 ? get[0].ulValueLen : 0, 0,
			"C_GetAttributeValue CKA_VALUE + an invalid type (value)");
		rec_add(rs, rv, &get[1].ulValueLen, sizeof(CK_ULONG), 0,
			"C_GetAttributeValue invalid type's ulValueLen");
		rv = f->C_EncryptInit(s, &m, 0x55555);
		rec_add(rs, rv, NULL, 0, 0, "C_EncryptInit with a bad key handle");
		compare_params(f, s, key, rs);
		rv = f->C_DestroyObject(s, key);
		rec_add(rs, rv, NULL, 0, 0, "C_DestroyObject");
		rv = f->C_DestroyObject(s, key);
		rec_add(rs, rv, NULL, 0, 0, "C_DestroyObject twice");
	}

	{
		int dummy = 0;
		rv = f->C_Finalize(&dummy);
		rec_add(rs, rv, NULL, 0, 0, "C_Finalize with non-NULL pReserved");
	}
	rv = f->C_Logout(s);
	rec_add(rs, rv, NULL, 0, 0, "C_Logout");
	rv = f->C_Logout(s);
	rec_add(rs, rv, NULL, 0, 0, "C_Logout twice");
	rv = f->C_CloseSession(s);
	rec_add(rs, rv, NULL, 0, 0, "C_CloseSession");
	rv = f->C_CloseAllSessions(slot);
	rec_add(rs, rv, NULL, 0, 0, "C_CloseAllSessions");
	{
		CK_SESSION_INFO si;
		rv = f->C_GetSessionInfo(s2, &si);
		rec_add(rs, rv, NULL, 0, 0, "C_GetSessionInfo after C_CloseAllSessions");
	}
out:
	rv = f->C_Finalize(NULL);
	rec_add(rs, rv, NULL, 0, 0, "C_Finalize");
	rv = f->C_GetSlotList(CK_TRUE, NULL, &n);
	rec_add(rs, rv, NULL, 0, 0, "C_GetSlotList after C_Finalize");
	/* Initialize arguments the vendor refuses (last: through the proxy,
	 * each failed start uses up a handle generation) */
	{
		CK_C_INITIALIZE_ARGS a = os_locking_args();
		a.pReserved = (void *)"not-a-p11isolate-setting";
		rv = f->C_Initialize(&a);
		rec_add(rs, rv, NULL, 0, 0, "C_Initialize with a pReserved meant for the vendor");
		if (rv == CKR_OK)
			f->C_Finalize(NULL);
		CK_C_INITIALIZE_ARGS b = os_locking_args();
		b.CreateMutex = (CK_CREATEMUTEX)(void *)init_locking; /* never called */
		rv = f->C_Initialize(&b);
		rec_add(rs, rv, NULL, 0, 0, "C_Initialize with only CreateMutex set");
		if (rv == CKR_OK)
			f->C_Finalize(NULL);
	}
	rv = f->C_Finalize(NULL);
	rec_add(rs, rv, NULL, 0, 0, "C_Finalize twice");
}

static const struct rec *find_rec(const struct recs *rs, const char *name)
{
	for (int i = 0; i < rs->n; i++) {
		if (strcmp(rs->r[i].name, name) == 0)
			return &rs->r[i];
	}
	return NULL;
}

static int scenario_compare(CK_FUNCTION_LIST_PTR proxy, const char *direct_path, const char *pin)
{
	CK_FUNCTION_LIST_PTR direct = load_module(direct_path);
	if (direct == NULL)
		return finish();
	struct recs d = { 0 }, p = { 0 };
	note("running the sequence directly against %s", direct_path);
	run_sequence(direct, pin, &d);
	note("running the sequence through %s", module_path);
	run_sequence(proxy, pin, &p);

	char hd[2100], hp[2100];
	int mech_total = 0, mech_diff = 0;
	for (int i = 0; i < d.n; i++) {
		const struct rec *a = &d.r[i];
		const struct rec *b = find_rec(&p, a->name);
		if (b == NULL) {
			fail("compare %s: the proxy run never got there (direct: %s)", a->name, rvs(a->rv));
			continue;
		}
		int same_rv = a->rv == b->rv;
		int same_out = a->outlen == b->outlen && memcmp(a->out, b->out, a->outlen) == 0;
		if (a->mech) {
			mech_total++;
			if (same_rv && same_out)
				continue;
			mech_diff++;
		}
		if (!same_rv) {
			fail("compare %s: proxy %s, direct %s", a->name, rvs(b->rv), rvs(a->rv));
		} else if (!same_out) {
			hex(b->out, b->outlen, hp, sizeof(hp));
			hex(a->out, a->outlen, hd, sizeof(hd));
			fail("compare %s (%s): output differs: proxy %zu bytes %.160s, direct %zu bytes %.160s", a->name,
			     rvs(a->rv), b->outlen, hp, a->outlen, hd);
		} else if (a->outlen) {
			hex(a->out, a->outlen, hd, sizeof(hd));
			check(1, "compare %s: both %s, same output (%zu bytes%s%.64s)", a->name, rvs(a->rv), a->outlen,
			      a->outlen <= 32 ? ": " : "", a->outlen <= 32 ? hd : "");
		} else {
			check(1, "compare %s: both %s", a->name, rvs(a->rv));
		}
	}
	for (int i = 0; i < p.n; i++) {
		if (find_rec(&d, p.r[i].name) == NULL)
			fail("compare %s: only the proxy run got there (%s)", p.r[i].name, rvs(p.r[i].rv));
	}
	check(mech_total > 0 && mech_diff == 0, "compare C_GetMechanismInfo of every mechanism: %d mechanisms, %d differ",
	      mech_total, mech_diff);

	/* The spec's expected answers, for the proxy's record. */
	struct {
		const char *name;
		CK_RV want;
	} expect[] = {
		{ "C_GetSlotList before C_Initialize", CKR_CRYPTOKI_NOT_INITIALIZED },
		{ "C_Finalize before C_Initialize", CKR_CRYPTOKI_NOT_INITIALIZED },
		{ "C_Initialize", CKR_OK },
		{ "second C_Initialize", CKR_CRYPTOKI_ALREADY_INITIALIZED },
		{ "C_GenerateRandom on a bad session handle", CKR_SESSION_HANDLE_INVALID },
		{ "C_Finalize with non-NULL pReserved", CKR_ARGUMENTS_BAD },
		{ "C_Finalize", CKR_OK },
		{ "C_GetSlotList after C_Finalize", CKR_CRYPTOKI_NOT_INITIALIZED },
	};
	for (size_t i = 0; i < sizeof(expect) / sizeof(expect[0]); i++) {
		const struct rec *r = find_rec(&p, expect[i].name);
		char what[160];
		snprintf(what, sizeof(what), "proxy: %s", expect[i].name);
		check_rv(what, r ? r->rv : (CK_RV)-1, expect[i].want);
	}
	free(d.r);
	free(p.r);
	return finish();
}

/* ------------------------------------------------------------------ */
/* crash                                                               */

struct crash_ctx {
	CK_FUNCTION_LIST_PTR f;
	const char *pin;
	char label[64];
	CK_SLOT_ID slot;
	CK_SESSION_HANDLE s;
	CK_OBJECT_HANDLE pub, priv;
};

/* fresh_session checks that a new host serves calls without C_Finalize:
 * slot list, session, login, find the token keys, sign + verify. */
static int fresh_session(struct crash_ctx *c, const char *tag)
{
	CK_FUNCTION_LIST_PTR f = c->f;
	CK_ULONG n = 0;
	CK_RV rv = f->C_GetSlotList(CK_TRUE, NULL, &n);
	char what[200];
	snprintf(what, sizeof(what), "%s: C_GetSlotList", tag);
	int ok = check_rv(what, rv, CKR_OK);
	/* like an application that reopens into the same variable: it still
	 * holds the dead host's handle */
	CK_SESSION_HANDLE s = c->s;
	rv = f->C_OpenSession(c->slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &s);
	snprintf(what, sizeof(what), "%s: C_OpenSession", tag);
	if (!check_rv(what, rv, CKR_OK))
		return 0;
	CK_SESSION_INFO si;
	CK_RV rv2 = f->C_GetSessionInfo(s, &si);
	if (!check(rv2 == CKR_OK,
		   "%s: the handle C_OpenSession wrote over the dead host's handle (0x%lx) works: got 0x%lx, C_GetSessionInfo %s",
		   tag, (unsigned long)c->s, (unsigned long)s, rvs(rv2))) {
		/* go on with a fresh variable, to test the rest */
		s = CK_INVALID_HANDLE;
		rv = f->C_OpenSession(c->slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &s);
		snprintf(what, sizeof(what), "%s: C_OpenSession into a zeroed variable", tag);
		if (!check_rv(what, rv, CKR_OK))
			return 0;
	}
	rv = f->C_Login(s, CKU_USER, (CK_UTF8CHAR_PTR)c->pin, strlen(c->pin));
	snprintf(what, sizeof(what), "%s: C_Login (the new host's vendor starts logged out)", tag);
	ok &= check_rv(what, rv, CKR_OK);
	CK_OBJECT_HANDLE pub, priv;
	rv = find_pair(f, s, c->label, &pub, &priv);
	snprintf(what, sizeof(what), "%s: find the token key pair by label", tag);
	ok &= check_rv(what, rv, CKR_OK);
	if (rv == CKR_OK && c->priv != priv) {
		CK_MECHANISM m = { CKM_ECDSA, NULL, 0 };
		rv = f->C_SignInit(s, &m, c->priv);
		if (rv == CKR_KEY_HANDLE_INVALID || rv == CKR_OBJECT_HANDLE_INVALID)
			check(1, "%s: C_SignInit with the dead host's key handle is refused (%s)", tag, rvs(rv));
		else
			ok &= check(0, "%s: C_SignInit with the dead host's key handle: got %s want CKR_KEY_HANDLE_INVALID",
				    tag, rvs(rv));
	}
	const char *step = "";
	rv = ec_sign_verify(f, s, priv, pub, &step);
	snprintf(what, sizeof(what), "%s: sign + verify (failing step %s)", tag, rv == CKR_OK ? "none" : step);
	ok &= check_rv(what, rv, CKR_OK);
	c->s = s;
	c->pub = pub;
	c->priv = priv;
	return ok;
}

struct crash_case {
	const char *spec;
	const char *func; /* which call the test makes to trigger it */
};

/* trigger makes the call that the armed fault hits; returns its rv. */
static CK_RV trigger(struct crash_ctx *c, const char *func)
{
	CK_FUNCTION_LIST_PTR f = c->f;
	if (strcmp(func, "C_Sign") == 0) {
		CK_BYTE sig[128];
		CK_ULONG siglen = sizeof(sig);
		return f->C_Sign(c->s, (CK_BYTE_PTR)sha256_abc, 32, sig, &siglen);
	}
	if (strcmp(func, "C_GetAttributeValue") == 0) {
		char label[64];
		CK_ATTRIBUTE a = { CKA_LABEL, label, sizeof(label) };
		return f->C_GetAttributeValue(c->s, c->pub, &a, 1);
	}
	if (strcmp(func, "C_FindObjects") == 0) {
		CK_OBJECT_HANDLE h[4];
		CK_ULONG n = 0;
		return f->C_FindObjects(c->s, h, 4, &n);
	}
	if (strcmp(func, "C_GetSlotList") == 0) {
		CK_ULONG n = 0;
		return f->C_GetSlotList(CK_TRUE, NULL, &n);
	}
	return CKR_GENERAL_ERROR;
}

/* prepare sets up the operation the triggering call needs (not faulted). */
static CK_RV prepare(struct crash_ctx *c, const char *func)
{
	CK_FUNCTION_LIST_PTR f = c->f;
	if (strcmp(func, "C_Sign") == 0) {
		CK_MECHANISM m = { CKM_ECDSA, NULL, 0 };
		return f->C_SignInit(c->s, &m, c->priv);
	}
	if (strcmp(func, "C_FindObjects") == 0) {
		CK_ATTRIBUTE t = { CKA_LABEL, c->label, strlen(c->label) };
		return f->C_FindObjectsInit(c->s, &t, 1);
	}
	return CKR_OK;
}

static CK_RV timed_getslotlist(void *arg)
{
	CK_FUNCTION_LIST_PTR f = arg;
	CK_ULONG n = 0;
	return f->C_GetSlotList(CK_TRUE, NULL, &n);
}

/* wedged is called when a call did not return: it checks whether the
 * library as a whole is stuck (another thread's call blocks too), reports
 * and ends the run. */
static void wedged(CK_FUNCTION_LIST_PTR f, const char *what)
{
	CK_RV rv = 0;
	double dt = 0;
	char msg[600];
	if (run_timed(timed_getslotlist, f, 3, &rv, &dt))
		snprintf(msg, sizeof(msg), "%s; meanwhile C_GetSlotList from another thread returned %s", what, rvs(rv));
	else
		snprintf(msg, sizeof(msg),
			 "%s; C_GetSlotList from another thread blocks too: the library is wedged (deadlock)", what);
	die_now(msg);
}

static int scenario_crash(CK_FUNCTION_LIST_PTR f, const char *pin)
{
	CK_RV rv;
	setup_faultmod_env();
	setenv("P11ISOLATE_TIMEOUT", "2s", 1);
	note("P11ISOLATE_MODULE=%s FAULTMOD_FILE=%s P11ISOLATE_TIMEOUT=2s", faultmod_path(), fault_file);

	struct crash_ctx c;
	memset(&c, 0, sizeof(c));
	c.f = f;
	c.pin = pin;
	snprintf(c.label, sizeof(c.label), "p11test-crash-%d", (int)getpid());

	if (!check_rv("C_Initialize through faultmod", init_locking(f), CKR_OK))
		return finish();
	rv = find_token_slot(f, &c.slot);
	if (!check_rv("find the token slot", rv, CKR_OK))
		return finish();
	rv = open_login(f, c.slot, pin, &c.s);
	if (!check_rv("C_OpenSession + C_Login", rv, CKR_OK))
		return finish();
	rv = gen_ec(f, c.s, c.label, &yes, &c.pub, &c.priv);
	if (!check_rv("C_GenerateKeyPair EC P-256 token key pair", rv, CKR_OK))
		return finish();
	rv = ec_sign_verify(f, c.s, c.priv, c.pub, NULL);
	check_rv("sign + verify before any fault", rv, CKR_OK);
	pid_t hp = host_pid();
	check(hp > 0, "found the host process: pid %d", (int)hp);

	const struct crash_case cases[] = {
		{ "segv:C_Sign", "C_Sign" },
		{ "exit0:C_Sign", "C_Sign" },
		{ "abort:C_GetAttributeValue", "C_GetAttributeValue" },
		{ "kill:C_FindObjects", "C_FindObjects" },
		{ "hang:C_Sign", "C_Sign" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct crash_case *k = &cases[i];
		char what[200];
		int hang = strncmp(k->spec, "hang", 4) == 0;
		CK_SESSION_HANDLE old = c.s;
		note("--- fault %s", k->spec);
		rv = prepare(&c, k->func);
		snprintf(what, sizeof(what), "%s: set up the operation", k->spec);
		check_rv(what, rv, CKR_OK);
		arm(k->spec);
		double t0 = now_s();
		rv = trigger(&c, k->func);
		double dt = now_s() - t0;
		arm("none");
		snprintf(what, sizeof(what), "%s: %s returns CKR_DEVICE_ERROR", k->spec, k->func);
		check_rv(what, rv, CKR_DEVICE_ERROR);
		if (hang)
			check(dt >= 1.5 && dt <= 4.0, "%s: returned after the 2 s timeout: took %.2f s (want 1.5..4.0)",
			      k->spec, dt);
		else
			check(dt < 3.0, "%s: returned promptly: took %.2f s", k->spec, dt);
		check(kill(getpid(), 0) == 0, "%s: the application is still alive (pid %d)", k->spec, (int)getpid());

		/* the dead host's session, before anything else: this call also
		 * starts the new host */
		CK_SESSION_INFO si;
		rv = f->C_GetSessionInfo(old, &si);
		snprintf(what, sizeof(what), "%s: C_GetSessionInfo on the dead host's session", k->spec);
		check_rv(what, rv, CKR_SESSION_HANDLE_INVALID);
		CK_BYTE rnd[8];
		rv = f->C_GenerateRandom(old, rnd, sizeof(rnd));
		snprintf(what, sizeof(what), "%s: C_GenerateRandom on the dead host's session", k->spec);
		check_rv(what, rv, CKR_SESSION_HANDLE_INVALID);

		fresh_session(&c, k->spec);
		pid_t np = host_pid();
		check(np > 0 && np != hp, "%s: a new host serves the calls: pid %d, was %d", k->spec, (int)np, (int)hp);
		check(wait_gone(hp, 3000), "%s: the dead host %d was reaped (no zombie) within 3 s", k->spec, (int)hp);
		hp = np;
	}

	/* The application ignores SIGCHLD: the kernel reaps the host itself. */
	note("--- fault segv:C_Sign with SIGCHLD set to SIG_IGN");
	{
		struct sigaction ign, old_sa;
		memset(&ign, 0, sizeof(ign));
		ign.sa_handler = SIG_IGN;
		sigaction(SIGCHLD, &ign, &old_sa);
		rv = prepare(&c, "C_Sign");
		check_rv("SIGCHLD ignored: C_SignInit", rv, CKR_OK);
		arm("segv:C_Sign");
		double t0 = now_s();
		rv = trigger(&c, "C_Sign");
		double dt = now_s() - t0;
		arm("none");
		check_rv("SIGCHLD ignored: C_Sign returns CKR_DEVICE_ERROR", rv, CKR_DEVICE_ERROR);
		check(dt < 3.0, "SIGCHLD ignored: returned promptly: took %.2f s", dt);
		fresh_session(&c, "SIGCHLD ignored");
		pid_t np = host_pid();
		check(np > 0 && np != hp, "SIGCHLD ignored: a new host: pid %d, was %d", (int)np, (int)hp);
		hp = np;
		sigaction(SIGCHLD, &old_sa, NULL);
	}

	/* A crash, then C_Finalize + C_Initialize. */
	note("--- fault segv:C_Sign, then C_Finalize + C_Initialize");
	rv = prepare(&c, "C_Sign");
	check_rv("crash+finalize: C_SignInit", rv, CKR_OK);
	arm("segv:C_Sign");
	rv = trigger(&c, "C_Sign");
	arm("none");
	check_rv("crash+finalize: C_Sign returns CKR_DEVICE_ERROR", rv, CKR_DEVICE_ERROR);
	rv = f->C_Finalize(NULL);
	check_rv("crash+finalize: C_Finalize after the crash", rv, CKR_OK);
	rv = init_locking(f);
	check_rv("crash+finalize: C_Initialize", rv, CKR_OK);
	fresh_session(&c, "crash+finalize");
	pid_t np = host_pid();
	check(np > 0 && np != hp, "crash+finalize: a new host: pid %d, was %d", (int)np, (int)hp);
	hp = np;

	/* Clean up the token keys, then finalize: no host may remain. */
	rv = f->C_DestroyObject(c.s, c.priv);
	check_rv("C_DestroyObject private key", rv, CKR_OK);
	rv = f->C_DestroyObject(c.s, c.pub);
	check_rv("C_DestroyObject public key", rv, CKR_OK);
	rv = f->C_Finalize(NULL);
	check_rv("C_Finalize", rv, CKR_OK);
	char desc[256];
	int left = wait_no_hosts(1500, desc, sizeof(desc));
	check(left == 0, "no host child process remains after C_Finalize: %d left [%s]", left, desc);

	/* The vendor crashes in C_Finalize: the library is finalized anyway. */
	note("--- fault segv:C_Finalize");
	rv = init_locking(f);
	check_rv("crash in C_Finalize: C_Initialize", rv, CKR_OK);
	arm("segv:C_Finalize");
	rv = f->C_Finalize(NULL);
	arm("none");
	check(rv == CKR_OK || rv == CKR_DEVICE_ERROR, "crash in C_Finalize: C_Finalize returns CKR_OK or CKR_DEVICE_ERROR: got %s",
	      rvs(rv));
	{
		CK_ULONG n = 0;
		rv = f->C_GetSlotList(CK_TRUE, NULL, &n);
		check_rv("crash in C_Finalize: the library is finalized (C_GetSlotList)", rv, CKR_CRYPTOKI_NOT_INITIALIZED);
	}
	left = wait_no_hosts(1500, desc, sizeof(desc));
	check(left == 0, "crash in C_Finalize: no host child process remains: %d left [%s]", left, desc);

	/* A crash of the vendor's C_Initialize while the proxy restarts a host
	 * on its own (the replay of the application's C_Initialize). */
	note("--- fault in the replayed C_Initialize of an automatic restart");
	rv = init_locking(f);
	check_rv("restart-crash: C_Initialize", rv, CKR_OK);
	rv = f->C_OpenSession(c.slot, CKF_SERIAL_SESSION, NULL, NULL, &c.s);
	check_rv("restart-crash: C_OpenSession", rv, CKR_OK);
	arm("kill:C_GenerateRandom");
	{
		CK_BYTE rnd[8];
		rv = f->C_GenerateRandom(c.s, rnd, sizeof(rnd));
	}
	check_rv("restart-crash: C_GenerateRandom killed", rv, CKR_DEVICE_ERROR);
	arm("exit3:C_Initialize");
	double dt = 0;
	if (!run_timed(timed_getslotlist, f, 25, &rv, &dt))
		wedged(f, "restart-crash: C_GetSlotList, whose automatic restart meets a vendor exiting in C_Initialize, "
			  "did not return within 25 s");
	check_rv("restart-crash: C_GetSlotList when the restarted vendor dies in C_Initialize", rv, CKR_DEVICE_ERROR);
	check(dt < 10, "restart-crash: returned within 10 s: %.2f s", dt);
	arm("none");
	/* the proxy backs off after a failed restart (100 ms, doubling, at
	 * most 5 s): retry for a while */
	double t0 = now_s();
	do {
		if (!run_timed(timed_getslotlist, f, 10, &rv, &dt))
			wedged(f, "restart-crash: C_GetSlotList once the fault is gone did not return within 10 s");
		if (rv != CKR_OK)
			sleep_ms(100);
	} while (rv != CKR_OK && now_s() - t0 < 8);
	check_rv("restart-crash: C_GetSlotList once the fault is gone (retried through the back-off)", rv, CKR_OK);
	rv = f->C_Finalize(NULL);
	check_rv("restart-crash: C_Finalize", rv, CKR_OK);
	left = wait_no_hosts(1500, desc, sizeof(desc));
	check(left == 0, "restart-crash: no host child process remains after C_Finalize: %d left [%s]", left, desc);
	cleanup_fault_file();
	return finish();
}

/* ------------------------------------------------------------------ */
/* fork                                                                */

static int scenario_fork(CK_FUNCTION_LIST_PTR f)
{
	CK_RV rv;
	if (!check_rv("C_Initialize", init_locking(f), CKR_OK))
		return finish();
	CK_SLOT_ID slot;
	rv = find_token_slot(f, &slot);
	check_rv("find the token slot", rv, CKR_OK);
	CK_SESSION_HANDLE s = CK_INVALID_HANDLE;
	rv = f->C_OpenSession(slot, CKF_SERIAL_SESSION, NULL, NULL, &s);
	check_rv("C_OpenSession", rv, CKR_OK);
	CK_BYTE rnd[32];
	rv = f->C_GenerateRandom(s, rnd, sizeof(rnd));
	check_rv("C_GenerateRandom before fork", rv, CKR_OK);
	pid_t hp = host_pid();

	for (int round = 0; round < 2; round++) {
		/* round 0: the child tries calls and _exits;
		 * round 1: the child calls exit(), running atexit handlers and
		 * library destructors with the Go runtime half-gone. */
		int res[2], errp[2];
		if (pipe(res) != 0 || pipe(errp) != 0) {
			fail("pipe: %s", strerror(errno));
			return finish();
		}
		fflush(stdout);
		fflush(stderr);
		double t0 = now_s();
		pid_t pid = fork();
		if (pid < 0) {
			fail("fork: %s", strerror(errno));
			return finish();
		}
		if (pid == 0) {
			close(res[0]);
			close(errp[0]);
			dup2(errp[1], STDERR_FILENO);
			signal(SIGALRM, SIG_DFL); /* a deadlocked child dies of it */
			alarm(5);
			if (round == 0) {
				CK_RV r[6];
				CK_ULONG n = 0;
				CK_INFO info;
				CK_BYTE b[8];
				r[0] = f->C_GetSlotList(CK_TRUE, NULL, &n);
				r[1] = f->C_GetInfo(&info);
				r[2] = f->C_GenerateRandom(s, b, sizeof(b));
				r[3] = f->C_Initialize(NULL);
				r[4] = f->C_GetSlotList(CK_TRUE, NULL, &n);
				r[5] = f->C_Finalize(NULL);
				ssize_t unused = write(res[1], r, sizeof(r));
				(void)unused;
				_exit(0);
			}
			exit(0);
		}
		close(res[1]);
		close(errp[1]);
		int status = 0;
		pid_t w = 0;
		while (now_s() - t0 < 8) {
			w = waitpid(pid, &status, WNOHANG);
			if (w != 0)
				break;
			sleep_ms(20);
		}
		double dt = now_s() - t0;
		if (w == 0) {
			kill(pid, SIGKILL);
			waitpid(pid, &status, 0);
		}
		const char *what = round == 0 ? "child making PKCS#11 calls" : "child calling exit()";
		check(w == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0,
		      "fork: %s finished by itself within 5 s with status 0: %s (%.2f s)", what,
		      w == 0				 ? "still running after 8 s, killed"
		      : WIFSIGNALED(status) && WTERMSIG(status) == SIGALRM ? "killed by its 5 s alarm (deadlock)"
		      : WIFSIGNALED(status)				 ? strsignal(WTERMSIG(status))
		      : WIFEXITED(status) && WEXITSTATUS(status) == 0	 ? "exited 0"
									 : "exited non-zero",
		      dt);
		char errbuf[2048];
		ssize_t el = read(errp[0], errbuf, sizeof(errbuf) - 1);
		errbuf[el > 0 ? el : 0] = '\0';
		if (round == 0) {
			CK_RV r[6];
			ssize_t got = read(res[0], r, sizeof(r));
			if (got != (ssize_t)sizeof(r)) {
				fail("fork: the child reported no results");
			} else {
				check_rv("fork child: C_GetSlotList", r[0], CKR_CRYPTOKI_NOT_INITIALIZED);
				check_rv("fork child: C_GetInfo", r[1], CKR_CRYPTOKI_NOT_INITIALIZED);
				check_rv("fork child: C_GenerateRandom on the parent's session", r[2],
					 CKR_CRYPTOKI_NOT_INITIALIZED);
				/* The parent was initialized at the fork: as a module
				 * loaded directly answers (SoftHSM2 does), its state
				 * stands, and the child gets a host of its own. */
				check_rv("fork child: C_Initialize", r[3], CKR_CRYPTOKI_ALREADY_INITIALIZED);
				check_rv("fork child: C_GetSlotList after its C_Initialize", r[4], CKR_OK);
				check_rv("fork child: C_Finalize", r[5], CKR_OK);
			}
			if (el > 0)
				note("child's stderr: %.300s", errbuf);
		} else if (el > 0) {
			note("child's stderr: %.300s", errbuf);
		}
		close(res[0]);
		close(errp[0]);

		rv = f->C_GenerateRandom(s, rnd, sizeof(rnd));
		check_rv("fork parent: C_GenerateRandom after the child ended", rv, CKR_OK);
		CK_ULONG n = 0;
		rv = f->C_GetSlotList(CK_TRUE, NULL, &n);
		check_rv("fork parent: C_GetSlotList", rv, CKR_OK);
		pid_t now = host_pid();
		check(now == hp, "fork parent: still the same host: pid %d, was %d", (int)now, (int)hp);
	}
	rv = f->C_CloseSession(s);
	check_rv("C_CloseSession", rv, CKR_OK);
	rv = f->C_Finalize(NULL);
	check_rv("C_Finalize", rv, CKR_OK);
	return finish();
}

/* ------------------------------------------------------------------ */
/* fds                                                                 */

struct leak {
	char desc[64];
	char path[PATH_MAX]; /* for files */
	ino_t ino;	     /* for sockets and pipes */
	const char *kind;    /* "file", "socket", "pipe" */
};
static struct leak leaks[16];
static int nleaks;

static void track_fd(int fd, const char *desc)
{
	if (nleaks == (int)(sizeof(leaks) / sizeof(leaks[0])))
		return;
	struct leak *l = &leaks[nleaks++];
	struct stat st;
	snprintf(l->desc, sizeof(l->desc), "%s (fd %d)", desc, fd);
	fstat(fd, &st);
	l->ino = st.st_ino;
	if (S_ISSOCK(st.st_mode)) {
		l->kind = "socket";
	} else if (S_ISFIFO(st.st_mode)) {
		l->kind = "pipe";
	} else {
		l->kind = "file";
		char link[64];
		snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
		ssize_t n = readlink(link, l->path, sizeof(l->path) - 1);
		l->path[n > 0 ? n : 0] = '\0';
	}
}

/* open_secrets opens a file (and, if more, a socketpair and a pipe) without
 * O_CLOEXEC and records them. */
static void open_secrets(const char *who, int more)
{
	char path[] = "/tmp/p11test-secret-XXXXXX";
	int fd = mkstemp(path); /* no O_CLOEXEC */
	if (fd < 0) {
		fail("mkstemp: %s", strerror(errno));
		return;
	}
	if (write(fd, "secret\n", 7) != 7)
		fail("write secret");
	char d[64];
	snprintf(d, sizeof(d), "%s secret file", who);
	track_fd(fd, d);
	unlink(path); /* the link text keeps the name, with " (deleted)" */
	if (!more)
		return;
	int hi = dup2(fd, 200); /* a high number, also without CLOEXEC */
	if (hi >= 0) {
		snprintf(d, sizeof(d), "%s secret file dup", who);
		track_fd(hi, d);
	}
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0) {
		snprintf(d, sizeof(d), "%s socketpair[0]", who);
		track_fd(sv[0], d);
		snprintf(d, sizeof(d), "%s socketpair[1]", who);
		track_fd(sv[1], d);
	}
	int pp[2];
	if (pipe(pp) == 0) {
		snprintf(d, sizeof(d), "%s pipe[0]", who);
		track_fd(pp[0], d);
		snprintf(d, sizeof(d), "%s pipe[1]", who);
		track_fd(pp[1], d);
	}
}

static void *secrets_thread(void *arg)
{
	(void)arg;
	open_secrets("thread", 1);
	return NULL;
}

/* scan_fds lists the fds of pid and marks which tracked fds of ours appear
 * among them (found[k]). Returns the number of fds, -1 if unreadable. */
static int scan_fds(pid_t pid, int *found, char *list, size_t listlen, int *fd0_null, int *fd3_sock)
{
	char dir[64];
	snprintf(dir, sizeof(dir), "/proc/%d/fd", (int)pid);
	DIR *d = opendir(dir);
	if (d == NULL)
		return -1;
	int fdnums[1024], nfd = 0;
	struct dirent *de;
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] != '.' && nfd < 1024)
			fdnums[nfd++] = atoi(de->d_name);
	}
	closedir(d);
	for (int i = 1; i < nfd; i++) /* sorted, for a readable list */
		for (int j = i; j > 0 && fdnums[j - 1] > fdnums[j]; j--) {
			int t = fdnums[j];
			fdnums[j] = fdnums[j - 1];
			fdnums[j - 1] = t;
		}
	int count = 0;
	size_t used = 0;
	list[0] = '\0';
	*fd0_null = *fd3_sock = 0;
	for (int i = 0; i < nfd; i++) {
		char p[128], target[PATH_MAX];
		snprintf(p, sizeof(p), "%s/%d", dir, fdnums[i]);
		ssize_t n = readlink(p, target, sizeof(target) - 1);
		if (n < 0)
			continue;
		target[n] = '\0';
		count++;
		if (used < listlen)
			used += (size_t)snprintf(list + used, listlen - used, "%s%d->%s", used ? " " : "", fdnums[i], target);
		if (fdnums[i] == 0 && strcmp(target, "/dev/null") == 0)
			*fd0_null = 1;
		if (fdnums[i] == 3 && strncmp(target, "socket:[", 8) == 0)
			*fd3_sock = 1;
		for (int k = 0; k < nleaks; k++) {
			int hit;
			if (strcmp(leaks[k].kind, "file") == 0) {
				hit = leaks[k].path[0] && strncmp(target, leaks[k].path, strlen(leaks[k].path)) == 0;
			} else {
				char want[64];
				snprintf(want, sizeof(want), "%s:[%lu]", leaks[k].kind, (unsigned long)leaks[k].ino);
				hit = strcmp(target, want) == 0;
			}
			if (hit && pid != getpid())
				fail("host fd %d is the application's %s: %s", fdnums[i], leaks[k].desc, target);
			found[k] |= hit;
		}
	}
	return count;
}

/* check_host_fds lists the host's fds and fails on any of ours. The same
 * scan of our own /proc/self/fd must find every one of them, or the check
 * could not see a leak. */
static void check_host_fds(const char *tag)
{
	int found[16] = { 0 }, fd0, fd3;
	char list[8192];
	int mine = scan_fds(getpid(), found, list, sizeof(list), &fd0, &fd3), seen = 0;
	for (int k = 0; k < nleaks; k++)
		seen += found[k];
	check(mine > 0 && seen == nleaks, "%s: self-check: the scan finds all %d tracked fds in /proc/self/fd: %d", tag,
	      nleaks, seen);

	pid_t hp = host_pid();
	if (!check(hp > 0, "%s: found the host process: pid %d", tag, (int)hp))
		return;
	memset(found, 0, sizeof(found));
	int count = scan_fds(hp, found, list, sizeof(list), &fd0, &fd3);
	if (!check(count >= 0, "%s: can read /proc/%d/fd: %s", tag, (int)hp, count >= 0 ? "yes" : strerror(errno)))
		return;
	int leaked = 0;
	for (int k = 0; k < nleaks; k++)
		leaked += found[k];
	note("%s: host %d fds: %s", tag, (int)hp, list);
	note("%s: host fd count: %d", tag, count);
	check(leaked == 0, "%s: none of the application's %d non-CLOEXEC fds is open in the host: %d are", tag, nleaks,
	      leaked);
	check(fd0, "%s: host fd 0 is /dev/null", tag);
	check(fd3, "%s: host fd 3 is a socket (control channel)", tag);
}

static int scenario_fds(CK_FUNCTION_LIST_PTR f)
{
	CK_RV rv;
	open_secrets("main", 1);
	for (int i = 0; i < nleaks; i++)
		note("opened without O_CLOEXEC: %s -> %s%s%lu", leaks[i].desc, leaks[i].kind,
		     strcmp(leaks[i].kind, "file") == 0 ? " " : ":", (unsigned long)leaks[i].ino);
	if (!check_rv("C_Initialize", init_locking(f), CKR_OK))
		return finish();
	CK_SLOT_ID slot;
	rv = find_token_slot(f, &slot);
	check_rv("find the token slot", rv, CKR_OK);
	CK_SESSION_HANDLE s = CK_INVALID_HANDLE;
	rv = f->C_OpenSession(slot, CKF_SERIAL_SESSION, NULL, NULL, &s);
	check_rv("C_OpenSession", rv, CKR_OK);
	CK_BYTE b[16];
	rv = f->C_GenerateRandom(s, b, sizeof(b));
	check_rv("C_GenerateRandom", rv, CKR_OK);
	check_host_fds("first host");

	/* more fds from a second thread, then a new host */
	pthread_t th;
	pthread_create(&th, NULL, secrets_thread, NULL);
	pthread_join(th, NULL);
	rv = f->C_GenerateRandom(s, b, sizeof(b));
	check_rv("C_GenerateRandom after the thread opened more fds", rv, CKR_OK);
	check_host_fds("first host, after the thread");
	rv = f->C_Finalize(NULL);
	check_rv("C_Finalize", rv, CKR_OK);
	rv = init_locking(f);
	check_rv("C_Initialize again", rv, CKR_OK);
	rv = find_token_slot(f, &slot);
	if (rv == CKR_OK)
		rv = f->C_OpenSession(slot, CKF_SERIAL_SESSION, NULL, NULL, &s);
	if (rv == CKR_OK)
		rv = f->C_GenerateRandom(s, b, sizeof(b));
	check_rv("second host: C_OpenSession + C_GenerateRandom", rv, CKR_OK);
	check_host_fds("second host");
	rv = f->C_Finalize(NULL);
	check_rv("C_Finalize", rv, CKR_OK);
	return finish();
}

/* ------------------------------------------------------------------ */
/* timing                                                              */

static int time_random(CK_FUNCTION_LIST_PTR f, const char *name, long n, double *us)
{
	if (!check_rv(name, init_locking(f), CKR_OK))
		return 0;
	CK_SLOT_ID slot;
	CK_SESSION_HANDLE s = CK_INVALID_HANDLE;
	CK_RV rv = find_token_slot(f, &slot);
	if (rv == CKR_OK)
		rv = f->C_OpenSession(slot, CKF_SERIAL_SESSION, NULL, NULL, &s);
	if (!check_rv("C_OpenSession", rv, CKR_OK))
		return 0;
	CK_BYTE b[32];
	for (int i = 0; i < 200; i++)
		f->C_GenerateRandom(s, b, sizeof(b));
	long bad = 0;
	double t0 = now_s();
	for (long i = 0; i < n; i++) {
		if (f->C_GenerateRandom(s, b, sizeof(b)) != CKR_OK)
			bad++;
	}
	double dt = now_s() - t0;
	*us = dt * 1e6 / (double)n;
	check(bad == 0, "%s: %ld calls of C_GenerateRandom(32) all CKR_OK (%ld failed)", name, n, bad);
	return 1;
}

static int scenario_timing(CK_FUNCTION_LIST_PTR proxy, long n, const char *direct_path)
{
	CK_FUNCTION_LIST_PTR direct = load_module(direct_path);
	if (direct == NULL)
		return finish();
	double d = 0, p = 0;
	if (!time_random(direct, "direct C_Initialize", n, &d))
		return finish();
	if (!time_random(proxy, "proxy C_Initialize", n, &p))
		return finish();
	printf("C_GenerateRandom(32): direct %.1f us/call, proxy %.1f us/call, overhead %.1f us\n", d, p, p - d);
	fflush(stdout);
	direct->C_Finalize(NULL);
	proxy->C_Finalize(NULL);
	return finish();
}

/* ------------------------------------------------------------------ */
/* threads                                                             */

struct tstate {
	CK_FUNCTION_LIST_PTR f;
	const char *pin;
	const char *label;
	CK_SLOT_ID slot;
	int id;
	int iters;
	int tolerate; /* the faulty run: DEVICE_ERROR and dead handles allowed */
	/* results */
	int ok, device_errors, dead_handles, reopens, other;
	CK_RV other_rv;
	char other_step[64];
};

static atomic_int t_progress;	 /* successful iterations, all threads */
static atomic_int t_disarmed;	 /* the first DEVICE_ERROR disarms the fault */
static atomic_int t_crashes_seen; /* DEVICE_ERRORs, all threads */

static int dead_handle_rv(CK_RV rv)
{
	return rv == CKR_SESSION_HANDLE_INVALID || rv == CKR_KEY_HANDLE_INVALID || rv == CKR_OBJECT_HANDLE_INVALID;
}

static void *thread_main(void *arg)
{
	struct tstate *t = arg;
	CK_FUNCTION_LIST_PTR f = t->f;
	CK_SESSION_HANDLE s = 0;
	CK_OBJECT_HANDLE pub = 0, priv = 0;
	int have = 0;
	double last_progress = now_s();
	while (t->ok < t->iters) {
		CK_RV rv;
		const char *step = "setup";
		if (!have) {
			step = "C_OpenSession/C_Login";
			rv = open_login(f, t->slot, t->pin, &s);
			if (rv == CKR_OK) {
				step = "find the key pair";
				rv = find_pair(f, s, t->label, &pub, &priv);
			}
			if (rv == CKR_OK) {
				have = 1;
				t->reopens++;
			}
		} else {
			rv = ec_sign_verify(f, s, priv, pub, &step);
			if (rv == CKR_OK) {
				t->ok++;
				atomic_fetch_add(&t_progress, 1);
				last_progress = now_s();
				continue;
			}
		}
		if (rv == CKR_OK)
			continue;
		if (t->tolerate && rv == CKR_DEVICE_ERROR) {
			t->device_errors++;
			atomic_fetch_add(&t_crashes_seen, 1);
			if (atomic_exchange(&t_disarmed, 1) == 0)
				arm("none");
			have = 0;
		} else if (t->tolerate && dead_handle_rv(rv)) {
			t->dead_handles++;
			have = 0;
		} else {
			if (t->other++ == 0) {
				t->other_rv = rv;
				snprintf(t->other_step, sizeof(t->other_step), "%s", step);
			}
			have = 0;
		}
		if (have == 0 && s != 0) {
			/* best effort: the session may be gone already */
			f->C_CloseSession(s);
			s = 0;
		}
		/* a failed restart makes the proxy back off for a while */
		if (rv == CKR_DEVICE_ERROR)
			sleep_ms(10);
		if (now_s() - last_progress > 30)
			break;
	}
	if (s)
		f->C_CloseSession(s);
	return NULL;
}

static void run_threads(CK_FUNCTION_LIST_PTR f, const char *pin, const char *label, CK_SLOT_ID slot, int tolerate,
			const char *tag, int arm_at)
{
	enum { NT = 4, ITERS = 200 };
	struct tstate ts[NT];
	pthread_t th[NT];
	atomic_store(&t_progress, 0);
	atomic_store(&t_disarmed, 0);
	atomic_store(&t_crashes_seen, 0);
	double t0 = now_s();
	for (int i = 0; i < NT; i++) {
		memset(&ts[i], 0, sizeof(ts[i]));
		ts[i].f = f;
		ts[i].pin = pin;
		ts[i].label = label;
		ts[i].slot = slot;
		ts[i].id = i;
		ts[i].iters = ITERS;
		ts[i].tolerate = tolerate;
		pthread_create(&th[i], NULL, thread_main, &ts[i]);
	}
	if (arm_at > 0) {
		while (atomic_load(&t_progress) < arm_at && now_s() - t0 < 60)
			sleep_ms(1);
		note("%s: arming segv:C_Sign:50 after %d successful iterations", tag, atomic_load(&t_progress));
		arm("segv:C_Sign:50");
	}
	for (int i = 0; i < NT; i++)
		pthread_join(th[i], NULL);
	double dt = now_s() - t0;
	int total_ok = 0, devs = 0;
	for (int i = 0; i < NT; i++) {
		struct tstate *t = &ts[i];
		total_ok += t->ok;
		devs += t->device_errors;
		note("%s: thread %d: %d ok, %d CKR_DEVICE_ERROR, %d dead-handle errors, %d sessions opened, %d other", tag,
		     i, t->ok, t->device_errors, t->dead_handles, t->reopens, t->other);
		if (t->other)
			check(0, "%s: thread %d saw only CKR_OK%s: got %s from %s", tag, i,
			      tolerate ? ", CKR_DEVICE_ERROR or dead-handle errors" : "", rvs(t->other_rv), t->other_step);
		else
			check(1, "%s: thread %d saw only CKR_OK%s", tag, i,
			      tolerate ? ", CKR_DEVICE_ERROR or dead-handle errors" : "");
		check(t->ok == ITERS, "%s: thread %d completed %d sign+verify iterations: got %d", tag, i, ITERS, t->ok);
	}
	note("%s: %d iterations in %.2f s", tag, total_ok, dt);
	if (arm_at > 0)
		check(devs >= 1, "%s: the injected crash surfaced as CKR_DEVICE_ERROR (%d times)", tag, devs);
}

/* The restart race: 8 threads call C_GetInfo as fast as they can while the
 * host is killed (SIGKILL from here) under them, 10 times. Calls in flight when the host dies
 * must fail with CKR_DEVICE_ERROR; nobody finalized the library, so
 * CKR_CRYPTOKI_NOT_INITIALIZED (or anything else) is wrong. */
enum { RACE_THREADS = 8 };
static atomic_int race_stop, race_devs;

struct race {
	CK_FUNCTION_LIST_PTR f;
	long calls, ok, dev;
	long other;
	CK_RV other_rv;
	double slowest;
	CK_RV slowest_rv;
};

static void *race_thread(void *arg)
{
	struct race *r = arg;
	while (!atomic_load(&race_stop)) {
		CK_INFO info;
		double t0 = now_s();
		CK_RV rv = r->f->C_GetInfo(&info);
		double dt = now_s() - t0;
		if (dt > r->slowest) {
			r->slowest = dt;
			r->slowest_rv = rv;
		}
		r->calls++;
		if (rv == CKR_OK) {
			r->ok++;
		} else if (rv == CKR_DEVICE_ERROR) {
			r->dev++;
			atomic_fetch_add(&race_devs, 1);
		} else if (r->other++ == 0) {
			r->other_rv = rv;
		}
	}
	return NULL;
}

static void race_run(CK_FUNCTION_LIST_PTR f)
{
	struct race rs[RACE_THREADS];
	pthread_t th[RACE_THREADS];
	atomic_store(&race_stop, 0);
	atomic_store(&race_devs, 0);
	for (int i = 0; i < RACE_THREADS; i++) {
		memset(&rs[i], 0, sizeof(rs[i]));
		rs[i].f = f;
		pthread_create(&th[i], NULL, race_thread, &rs[i]);
	}
	int rounds = 0, kills = 0;
	for (int round = 0; round < 10; round++) {
		sleep_ms(100);
		int before = atomic_load(&race_devs);
		pid_t hp = host_pid();
		for (double t0 = now_s(); hp <= 0 && now_s() - t0 < 6; hp = host_pid())
			sleep_ms(10); /* a restart back-off: the callers start one soon */
		if (hp <= 0)
			continue;
		kill(hp, SIGKILL); /* the vendor "crashes" mid-call */
		kills++;
		double t0 = now_s();
		while (atomic_load(&race_devs) == before && now_s() - t0 < 20)
			sleep_ms(1);
		if (atomic_load(&race_devs) != before)
			rounds++;
	}
	sleep_ms(100);
	atomic_store(&race_stop, 1);
	long calls = 0, dev = 0, other = 0;
	CK_RV other_rv = CKR_OK, slowest_rv = CKR_OK;
	double slowest = 0;
	for (int i = 0; i < RACE_THREADS; i++) {
		pthread_join(th[i], NULL);
		if (rs[i].slowest > slowest) {
			slowest = rs[i].slowest;
			slowest_rv = rs[i].slowest_rv;
		}
		calls += rs[i].calls;
		dev += rs[i].dev;
		if (rs[i].other && !other)
			other_rv = rs[i].other_rv;
		other += rs[i].other;
	}
	note("restart race: %ld calls of C_GetInfo from %d threads, %ld CKR_DEVICE_ERROR, %ld other, %d host kills, %d seen",
	     calls, RACE_THREADS, dev, other, kills, rounds);
	check(kills == 10, "restart race: a live host to kill each time: %d of 10", kills);
	check(rounds == kills, "restart race: each of the %d host kills surfaced as CKR_DEVICE_ERROR: %d did", kills, rounds);
	check(other == 0,
	      "restart race: calls in flight when the host is killed get CKR_OK or CKR_DEVICE_ERROR only: %ld got something else (first: %s)",
	      other, rvs(other_rv));
	/* A kill fails the calls in flight (one per thread) and maybe a few
	 * more while the new host starts; a restart that itself fails makes
	 * the proxy back off and fail every call for a while. */
	long budget = (long)kills * RACE_THREADS * 3;
	check(dev <= budget,
	      "restart race: each host kill fails only the calls around it, the next calls get a new host: %ld CKR_DEVICE_ERROR for %d kills of %d threads (at most %ld)",
	      dev, kills, RACE_THREADS, budget);
	check(slowest < 3.0,
	      "restart race: no call waited long for a new host (the vendor loads in milliseconds): slowest %.2f s (%s)",
	      slowest, rvs(slowest_rv));
	CK_INFO info;
	CK_RV rv = f->C_GetInfo(&info);
	check_rv("restart race: C_GetInfo afterwards", rv, CKR_OK);
	/* let a restart back-off run out, so the rest of the scenario runs */
	for (double t0 = now_s(); rv != CKR_OK && now_s() - t0 < 8; sleep_ms(100))
		rv = f->C_GetInfo(&info);
}

static CK_RV blocking_wait(void *arg)
{
	CK_FUNCTION_LIST_PTR f = arg;
	CK_SLOT_ID slot = 0;
	return f->C_WaitForSlotEvent(0, &slot, NULL);
}

static CK_RV timed_finalize(void *arg)
{
	CK_FUNCTION_LIST_PTR f = arg;
	return f->C_Finalize(NULL);
}

static int scenario_threads(CK_FUNCTION_LIST_PTR f, const char *pin)
{
	CK_RV rv;
	setup_faultmod_env();
	note("P11ISOLATE_MODULE=%s FAULTMOD_FILE=%s", faultmod_path(), fault_file);
	if (!check_rv("C_Initialize (CKF_OS_LOCKING_OK)", init_locking(f), CKR_OK))
		return finish();
	CK_SLOT_ID slot;
	rv = find_token_slot(f, &slot);
	check_rv("find the token slot", rv, CKR_OK);
	CK_SESSION_HANDLE s = CK_INVALID_HANDLE;
	rv = open_login(f, slot, pin, &s);
	check_rv("C_OpenSession + C_Login", rv, CKR_OK);
	char label[64];
	snprintf(label, sizeof(label), "p11test-threads-%d", (int)getpid());
	CK_OBJECT_HANDLE pub, priv;
	rv = gen_ec(f, s, label, &yes, &pub, &priv);
	if (!check_rv("C_GenerateKeyPair shared EC token key pair", rv, CKR_OK))
		return finish();
	pid_t hp = host_pid();

	run_threads(f, pin, label, slot, 0, "clean run", 0);
	check(host_pid() == hp, "clean run: same host throughout");

	run_threads(f, pin, label, slot, 1, "crash run", 100);
	check(kill(getpid(), 0) == 0, "crash run: the application is alive");
	pid_t np = host_pid();
	check(np > 0 && np != hp, "crash run: a new host took over: pid %d, was %d", (int)np, (int)hp);
	arm("none");

	run_threads(f, pin, label, slot, 0, "after the crash", 0);

	race_run(f);

	/* clean up the token keys */
	CK_SESSION_HANDLE s2 = CK_INVALID_HANDLE;
	rv = open_login(f, slot, pin, &s2);
	if (rv == CKR_OK)
		rv = find_pair(f, s2, label, &pub, &priv);
	if (rv == CKR_OK)
		rv = f->C_DestroyObject(s2, pub);
	if (rv == CKR_OK)
		rv = f->C_DestroyObject(s2, priv);
	check_rv("destroy the token key pair", rv, CKR_OK);
	rv = f->C_Finalize(NULL);
	check_rv("C_Finalize", rv, CKR_OK);
	char desc[256];
	int left = wait_no_hosts(1500, desc, sizeof(desc));
	check(left == 0, "no host child process remains after C_Finalize: %d left [%s]", left, desc);

	/* C_Finalize releases a thread blocked in C_WaitForSlotEvent (here a
	 * vendor that blocks forever in it): it returns
	 * CKR_CRYPTOKI_NOT_INITIALIZED. */
	rv = init_locking(f);
	check_rv("blocked wait: C_Initialize", rv, CKR_OK);
	arm("hang:C_WaitForSlotEvent");
	struct timed *w = calloc(1, sizeof(*w));
	pthread_mutex_init(&w->mu, NULL);
	pthread_cond_init(&w->cv, NULL);
	w->fn = blocking_wait;
	w->arg = f;
	pthread_t wt;
	pthread_create(&wt, NULL, timed_thread, w);
	sleep_ms(500);
	pthread_mutex_lock(&w->mu);
	int early = w->done;
	CK_RV early_rv = w->rv;
	pthread_mutex_unlock(&w->mu);
	check(!early, "blocked wait: C_WaitForSlotEvent(0) blocks%s%s", early ? ": it returned " : "",
	      early ? rvs(early_rv) : "");
	double t0 = now_s(), dt = 0;
	if (!run_timed(timed_finalize, f, 25, &rv, &dt))
		wedged(f, "blocked wait: C_Finalize did not return within 25 s");
	check_rv("blocked wait: C_Finalize", rv, CKR_OK);
	check(dt < 5, "blocked wait: C_Finalize returned within 5 s: %.2f s", dt);
	int done = 0;
	while (!done && now_s() - t0 < 10) {
		pthread_mutex_lock(&w->mu);
		done = w->done;
		pthread_mutex_unlock(&w->mu);
		if (!done)
			sleep_ms(20);
	}
	if (check(done, "blocked wait: C_Finalize released the waiting thread (within %.1f s)", now_s() - t0)) {
		pthread_join(wt, NULL);
		if (!early)
			check_rv("blocked wait: the released C_WaitForSlotEvent", w->rv, CKR_CRYPTOKI_NOT_INITIALIZED);
		free(w);
	}
	arm("none");
	left = wait_no_hosts(2500, desc, sizeof(desc));
	check(left == 0, "blocked wait: no host child process remains: %d left [%s]", left, desc);
	cleanup_fault_file();
	return finish();
}

/* ------------------------------------------------------------------ */
/* errors                                                              */

static CK_FUNCTION_LIST_PTR err_f;

static CK_RV timed_init(void *arg)
{
	(void)arg;
	return init_locking(err_f);
}

/* try_init runs C_Initialize under a 10 s watchdog. */
static CK_RV try_init(const char *what, CK_RV want, int want_any_error)
{
	CK_RV rv = 0;
	double dt = 0;
	if (!run_timed(timed_init, NULL, 25, &rv, &dt)) {
		char msg[300];
		snprintf(msg, sizeof(msg), "%s: C_Initialize did not return within 25 s (hang or deadlock in the proxy)",
			 what);
		wedged(err_f, msg);
	}
	check(dt < 10, "%s: C_Initialize returns within 10 s: took %.2f s", what, dt);
	if (want_any_error)
		check(rv != CKR_OK, "%s: C_Initialize fails: got %s", what, rvs(rv));
	else {
		char w[300];
		snprintf(w, sizeof(w), "%s: C_Initialize", what);
		check_rv(w, rv, want);
	}
	if (rv == CKR_OK)
		err_f->C_Finalize(NULL);
	return rv;
}

static void normal_init_works(const char *tag)
{
	CK_FUNCTION_LIST_PTR f = err_f;
	char w[200];
	setenv("P11ISOLATE_MODULE", softhsm_path(), 1);
	unsetenv("FAULTMOD_FAULT");
	CK_RV rv = 0;
	double dt = 0;
	if (!run_timed(timed_init, NULL, 25, &rv, &dt)) {
		snprintf(w, sizeof(w), "%s: C_Initialize with SoftHSM did not return within 25 s", tag);
		wedged(f, w);
	}
	snprintf(w, sizeof(w), "%s: C_Initialize with SoftHSM", tag);
	if (!check_rv(w, rv, CKR_OK))
		return;
	CK_SLOT_ID slot;
	CK_SESSION_HANDLE s = CK_INVALID_HANDLE;
	rv = find_token_slot(f, &slot);
	if (rv == CKR_OK)
		rv = f->C_OpenSession(slot, CKF_SERIAL_SESSION, NULL, NULL, &s);
	CK_BYTE b[16];
	if (rv == CKR_OK)
		rv = f->C_GenerateRandom(s, b, sizeof(b));
	snprintf(w, sizeof(w), "%s: slot list, session, C_GenerateRandom", tag);
	check_rv(w, rv, CKR_OK);
	rv = f->C_Finalize(NULL);
	snprintf(w, sizeof(w), "%s: C_Finalize", tag);
	check_rv(w, rv, CKR_OK);
}

static CK_RV timed_init_reserved(void *arg)
{
	CK_C_INITIALIZE_ARGS a = os_locking_args();
	a.pReserved = arg;
	return err_f->C_Initialize(&a);
}

static int scenario_errors(CK_FUNCTION_LIST_PTR f)
{
	err_f = f;
	unsetenv("FAULTMOD_FILE");
	unsetenv("FAULTMOD_FAULT");
	unsetenv("P11ISOLATE_CONFIG");

	unsetenv("P11ISOLATE_MODULE");
	try_init("P11ISOLATE_MODULE unset", CKR_GENERAL_ERROR, 0);
	CK_ULONG n;
	check_rv("after the failed C_Initialize: C_GetSlotList", f->C_GetSlotList(CK_TRUE, NULL, &n),
		 CKR_CRYPTOKI_NOT_INITIALIZED);

	setenv("P11ISOLATE_MODULE", "/nonexistent/libvendor.so", 1);
	try_init("P11ISOLATE_MODULE nonexistent", 0, 1);

	const char *notlib = "/etc/hostname";
	if (access(notlib, R_OK) != 0)
		notlib = "/etc/passwd";
	setenv("P11ISOLATE_MODULE", notlib, 1);
	char w[200];
	snprintf(w, sizeof(w), "P11ISOLATE_MODULE=%s (not a library)", notlib);
	try_init(w, 0, 1);

	setenv("P11ISOLATE_MODULE", "/usr/lib", 1);
	try_init("P11ISOLATE_MODULE is a directory", 0, 1);

	normal_init_works("after the configuration errors");

	/* configuration through pReserved */
	unsetenv("P11ISOLATE_MODULE");
	{
		char cfg[PATH_MAX + 64];
		snprintf(cfg, sizeof(cfg), "module=%s timeout=2s", softhsm_path());
		CK_RV rv = 0;
		double dt = 0;
		if (!run_timed(timed_init_reserved, cfg, 25, &rv, &dt))
			wedged(f, "C_Initialize with pReserved configuration did not return within 25 s");
		check_rv("C_Initialize configured by pReserved \"module=... timeout=2s\"", rv, CKR_OK);
		if (rv == CKR_OK) {
			CK_ULONG cnt = 0;
			check_rv("pReserved-configured: C_GetSlotList", f->C_GetSlotList(CK_TRUE, NULL, &cnt), CKR_OK);
			check_rv("pReserved-configured: C_Finalize", f->C_Finalize(NULL), CKR_OK);
		}
	}

	setenv("P11ISOLATE_MODULE", faultmod_path(), 1);
	setenv("FAULTMOD_FAULT", "segv:C_GetFunctionList", 1);
	try_init("faultmod with FAULTMOD_FAULT=segv:C_GetFunctionList", 0, 1);
	char desc[256];
	int left = wait_no_hosts(1500, desc, sizeof(desc));
	check(left == 0, "no host left behind by the failed C_Initialize: %d left [%s]", left, desc);

	setenv("FAULTMOD_FAULT", "exit3:C_Initialize", 1);
	try_init("faultmod with FAULTMOD_FAULT=exit3:C_Initialize", CKR_DEVICE_ERROR, 0);
	left = wait_no_hosts(1500, desc, sizeof(desc));
	check(left == 0, "no host left behind by the failed C_Initialize: %d left [%s]", left, desc);

	setenv("FAULTMOD_FAULT", "segv:C_Initialize", 1);
	try_init("faultmod with FAULTMOD_FAULT=segv:C_Initialize", CKR_DEVICE_ERROR, 0);

	normal_init_works("after the vendor failures");
	unsetenv("FAULTMOD_FAULT");
	return finish();
}

/* ------------------------------------------------------------------ */

static void usage(void)
{
	fprintf(stderr,
		"usage: p11test MODULE SCENARIO [args]\n"
		"  basic PIN                  the everyday calls, two Initialize/Finalize cycles\n"
		"  compare DIRECT_MODULE PIN  same sequence through MODULE and DIRECT_MODULE, compared\n"
		"  crash PIN                  vendor crashes/hangs (MODULE = proxy; uses faultmod)\n"
		"  fork                       the fork guard\n"
		"  fds                        no application fd leaks into the host\n"
		"  timing [N] [DIRECT_MODULE] N (20000) calls of C_GenerateRandom(32), direct vs MODULE\n"
		"  threads PIN                4 threads signing, with a crash in the middle (faultmod)\n"
		"  errors                     C_Initialize failures (MODULE = proxy)\n");
	exit(2);
}

int main(int argc, char **argv)
{
	if (argc < 3)
		usage();
	module_path = argv[1];
	const char *sc = argv[2];
	setvbuf(stdout, NULL, _IOLBF, 0);

	signal(SIGALRM, on_deadline);
	alarm((unsigned)atoi(env_or("P11TEST_DEADLINE", "240")));
	signal(SIGPIPE, SIG_IGN);

	CK_FUNCTION_LIST_PTR f = load_module(module_path);
	if (f == NULL)
		return finish();
	note("scenario %s, module %s", sc, module_path);

	if (strcmp(sc, "basic") == 0 && argc == 4)
		return scenario_basic(f, argv[3]);
	if (strcmp(sc, "compare") == 0 && argc == 5)
		return scenario_compare(f, argv[3], argv[4]);
	if (strcmp(sc, "crash") == 0 && argc == 4)
		return scenario_crash(f, argv[3]);
	if (strcmp(sc, "fork") == 0 && argc == 3)
		return scenario_fork(f);
	if (strcmp(sc, "fds") == 0 && argc == 3)
		return scenario_fds(f);
	if (strcmp(sc, "timing") == 0 && (argc == 4 || argc == 5)) {
		/* timing N DIRECT_MODULE, or timing DIRECT_MODULE (N = 20000) */
		long n = 20000;
		const char *direct = argv[3];
		if (argc == 5) {
			n = atol(argv[3]);
			direct = argv[4];
		} else if (strspn(argv[3], "0123456789") == strlen(argv[3])) {
			n = atol(argv[3]);
			direct = softhsm_path();
		}
		if (n <= 0)
			usage();
		return scenario_timing(f, n, direct);
	}
	if (strcmp(sc, "threads") == 0 && argc == 4)
		return scenario_threads(f, argv[3]);
	if (strcmp(sc, "errors") == 0 && argc == 3)
		return scenario_errors(f);
	usage();
	return 2;
}
