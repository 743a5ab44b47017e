/* prefork: the prefork pattern of issue 10 against one PKCS#11 module.
 *
 *   prefork MODULE PIN WORKERS [busy]
 *   prefork MODULE PIN faults      (through the proxy, MODULE faultmod:
 *                                   FAULTMOD_FILE and P11ISOLATE_LOG set)
 *
 * The parent initializes, logs in, makes an EC P-256 key pair on the token
 * and signs; then it forks WORKERS workers, a little apart (SoftHSM2 now and
 * then refuses logins from several processes at once), each of which calls
 * C_Initialize again (as PKCS#11 requires of a child), logs in, finds the
 * key, signs and verifies with the public key, and stays alive until every
 * worker has signed (workers concurrently alive). One worker also forks a
 * grandchild that does the same (a fork of a fork). With "busy", a parent
 * thread is in the middle of calls (C_GenerateRandom in a loop) while the
 * workers are forked: a module loaded directly may then deadlock in the
 * child on a lock the busy thread held at the fork (SoftHSM2 does, now and
 * then), so the direct run goes without it. Afterwards the parent signs and
 * verifies again.
 *
 * Prints one line per check and "N passed, N failed"; exit status 1 on any
 * failure. tests/fork/run.sh runs it against SoftHSM2 directly.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <p11-kit/pkcs11.h>

#include "../common/ckr.h"
#include "../common/report.h"

static CK_FUNCTION_LIST_PTR F;
static const char *pin;
static const CK_BYTE label[] = "prefork";

/* Shared with the workers: how many signed, so each stays alive until all
 * have (they are concurrently alive), and each one's verdict. */
struct shared {
	atomic_int signed_count;
	int want;
	CK_RV rv[64][4]; /* C_Initialize, C_Login, C_Sign, C_Verify */
};
static struct shared *sh;

static void sleep_ms(long ms)
{
	struct timespec t = { ms / 1000, (ms % 1000) * 1000000 };
	while (nanosleep(&t, &t) != 0 && errno == EINTR)
		;
}

static CK_SLOT_ID token_slot(void)
{
	CK_SLOT_ID slots[8];
	CK_ULONG n = 8;

	if (F->C_GetSlotList(CK_TRUE, slots, &n) != CKR_OK || n == 0)
		return (CK_SLOT_ID)-1;
	return slots[0];
}

static CK_RV find(CK_SESSION_HANDLE s, CK_OBJECT_CLASS cls, CK_OBJECT_HANDLE *h)
{
	CK_ATTRIBUTE t[] = { { CKA_CLASS, &cls, sizeof cls }, { CKA_LABEL, (void *)label, sizeof label - 1 } };
	CK_ULONG n = 0;
	CK_RV rv = F->C_FindObjectsInit(s, t, 2);

	if (rv != CKR_OK)
		return rv;
	rv = F->C_FindObjects(s, h, 1, &n);
	F->C_FindObjectsFinal(s);
	return rv != CKR_OK ? rv : n == 1 ? CKR_OK : CKR_OBJECT_HANDLE_INVALID;
}

/* sign_verify signs a digest with the private key and verifies it with the
 * public one: rv[0] the sign, rv[1] the verify. */
static void sign_verify(CK_SESSION_HANDLE s, CK_RV rv[2])
{
	CK_MECHANISM m = { CKM_ECDSA, NULL, 0 };
	CK_OBJECT_HANDLE priv, pub;
	CK_BYTE digest[32], sig[128];
	CK_ULONG n = sizeof sig;

	memset(digest, 0x5a, sizeof digest);
	rv[0] = find(s, CKO_PRIVATE_KEY, &priv);
	rv[1] = CKR_GENERAL_ERROR;
	if (rv[0] == CKR_OK && (rv[0] = F->C_SignInit(s, &m, priv)) == CKR_OK)
		rv[0] = F->C_Sign(s, digest, sizeof digest, sig, &n);
	if (rv[0] == CKR_OK && (rv[1] = find(s, CKO_PUBLIC_KEY, &pub)) == CKR_OK &&
	    (rv[1] = F->C_VerifyInit(s, &m, pub)) == CKR_OK)
		rv[1] = F->C_Verify(s, digest, sizeof digest, sig, n);
}

/* initialized: a child's C_Initialize succeeded, or the module says the
 * state it inherited stands (SoftHSM2 does: CKR_CRYPTOKI_ALREADY_INITIALIZED),
 * which applications such as libp11 take as success. */
static int initialized(CK_RV rv) { return rv == CKR_OK || rv == CKR_CRYPTOKI_ALREADY_INITIALIZED; }

/* worker is a forked process's life: initialize again, log in, sign and
 * verify, wait for the others; its verdicts go to sh->rv[i], and its fork
 * (grandchild >= 0)'s to sh->rv[grandchild]. */
static void worker(int i, int grandchild)
{
	CK_SESSION_HANDLE s;
	CK_RV *rv = sh->rv[i];

	/* Worker 1's environment is not its parent's: through the proxy its
	 * settings are resolved again (by the host image), not inherited. */
	if (i == 1)
		setenv("PREFORK_WORKER", "1", 1);
	rv[0] = F->C_Initialize(NULL);
	rv[1] = rv[2] = rv[3] = CKR_GENERAL_ERROR;
	if (initialized(rv[0]) && (rv[1] = F->C_OpenSession(token_slot(), CKF_SERIAL_SESSION, NULL, NULL, &s)) == CKR_OK) {
		rv[1] = F->C_Login(s, CKU_USER, (CK_UTF8CHAR_PTR)pin, strlen(pin));
		if (rv[1] == CKR_USER_ALREADY_LOGGED_IN)
			rv[1] = CKR_OK;
		if (rv[1] == CKR_OK)
			sign_verify(s, &rv[2]);
	}
	atomic_fetch_add(&sh->signed_count, 1);
	if (grandchild >= 0) {
		pid_t g = fork();
		if (g == 0) {
			worker(grandchild, -1);
			_exit(0);
		}
		waitpid(g, NULL, 0);
	}
	/* Alive until every worker has signed. */
	for (int t = 0; t < 600 && atomic_load(&sh->signed_count) < sh->want; t++)
		sleep_ms(50);
	if (initialized(rv[0]))
		F->C_Finalize(NULL);
}

static atomic_int stop;
static atomic_long busy_calls, busy_fail;

/* busy is a parent thread in the middle of calls while the workers fork. */
static void *busy(void *arg)
{
	CK_SESSION_HANDLE s = *(CK_SESSION_HANDLE *)arg;
	CK_BYTE r[32];

	while (!atomic_load(&stop)) {
		if (F->C_GenerateRandom(s, r, sizeof r) != CKR_OK)
			atomic_fetch_add(&busy_fail, 1);
		atomic_fetch_add(&busy_calls, 1);
	}
	return NULL;
}

/* make_key makes the EC P-256 key pair the workers use, on the token. */
static CK_RV make_key(CK_SESSION_HANDLE s, CK_OBJECT_HANDLE *pub, CK_OBJECT_HANDLE *priv)
{
	static const CK_BYTE p256[] = { 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07 };
	CK_BBOOL yes = CK_TRUE;
	CK_MECHANISM gen = { CKM_EC_KEY_PAIR_GEN, NULL, 0 };
	CK_ATTRIBUTE pubt[] = { { CKA_EC_PARAMS, (void *)p256, sizeof p256 }, { CKA_TOKEN, &yes, 1 },
				{ CKA_VERIFY, &yes, 1 }, { CKA_LABEL, (void *)label, sizeof label - 1 } };
	CK_ATTRIBUTE privt[] = { { CKA_SIGN, &yes, 1 }, { CKA_TOKEN, &yes, 1 }, { CKA_PRIVATE, &yes, 1 },
				 { CKA_LABEL, (void *)label, sizeof label - 1 } };

	return F->C_GenerateKeyPair(s, &gen, pubt, 4, privt, 4, pub, priv);
}

/* arm makes spec the fault of faultmod (FAULTMOD_FILE), by rename so that
 * the new arming restarts its count. */
static void arm(const char *spec)
{
	const char *path = getenv("FAULTMOD_FILE");
	char tmp[4096];
	FILE *f;

	snprintf(tmp, sizeof tmp, "%s.%d", path, (int)getpid());
	if ((f = fopen(tmp, "w")) == NULL || fprintf(f, "%s\n", spec) < 0 || fclose(f) != 0 || rename(tmp, path) != 0)
		fprintf(stderr, "prefork: cannot arm %s\n", spec);
}

static int log_has(const char *what)
{
	char buf[1 << 16];
	FILE *f = fopen(getenv("P11ISOLATE_LOG"), "r");
	size_t n = f ? fread(buf, 1, sizeof buf - 1, f) : 0;

	if (f)
		fclose(f);
	buf[n] = '\0';
	return strstr(buf, what) != NULL;
}

/* child_session opens a session in this process and logs in. */
static CK_RV child_session(CK_SESSION_HANDLE *s)
{
	CK_RV rv = F->C_OpenSession(token_slot(), CKF_SERIAL_SESSION, NULL, NULL, s);
	if (rv == CKR_OK) {
		rv = F->C_Login(*s, CKU_USER, (CK_UTF8CHAR_PTR)pin, strlen(pin));
		if (rv == CKR_USER_ALREADY_LOGGED_IN)
			rv = CKR_OK;
	}
	return rv;
}

/* children_of lists the processes whose parent is pid (at most max). */
static int children_of(pid_t pid, pid_t *out, int max)
{
	DIR *d = opendir("/proc");
	struct dirent *e;
	int n = 0;

	while (d != NULL && (e = readdir(d)) != NULL && n < max) {
		char path[300], buf[512], *p;
		int ppid;
		FILE *f;
		if (e->d_name[0] < '0' || e->d_name[0] > '9')
			continue;
		snprintf(path, sizeof path, "/proc/%s/stat", e->d_name);
		if ((f = fopen(path, "r")) == NULL)
			continue;
		size_t len = fread(buf, 1, sizeof buf - 1, f);
		fclose(f);
		buf[len] = '\0';
		/* pid (comm) state ppid: comm may hold spaces and parentheses */
		if ((p = strrchr(buf, ')')) != NULL && sscanf(p + 1, " %*c %d", &ppid) == 1 && ppid == pid)
			out[n++] = atoi(e->d_name);
	}
	if (d != NULL)
		closedir(d);
	return n;
}

/* gone: pid has exited (no such process, or a zombie awaiting its reaper). */
static int gone(pid_t pid)
{
	char path[64], buf[512], *p;
	FILE *f;

	snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
	if ((f = fopen(path, "r")) == NULL)
		return 1;
	size_t len = fread(buf, 1, sizeof buf - 1, f);
	fclose(f);
	buf[len] = '\0';
	return (p = strrchr(buf, ')')) != NULL && p[1] == ' ' && (p[2] == 'Z' || p[2] == 'X');
}

/* killed_child: a child with a host of its own is SIGKILLed; its host ends
 * with it, and the parent's is untouched. */
static void killed_child(CK_SESSION_HANDLE s)
{
	int ready[2];
	CK_RV sv[2];
	char c = 0;

	if (pipe(ready) != 0)
		return;
	pid_t pid = fork();
	if (pid == 0) {
		CK_SESSION_HANDLE cs;
		CK_RV r[2] = { CKR_GENERAL_ERROR, CKR_GENERAL_ERROR };
		CK_RV init = F->C_Initialize(NULL);
		if ((init == CKR_OK || init == CKR_CRYPTOKI_ALREADY_INITIALIZED) && child_session(&cs) == CKR_OK)
			sign_verify(cs, r);
		c = r[0] == CKR_OK && r[1] == CKR_OK;
		ssize_t unused = write(ready[1], &c, 1);
		(void)unused;
		for (;;)
			pause();
	}
	close(ready[1]);
	ssize_t got = read(ready[0], &c, 1);
	close(ready[0]);
	pid_t hosts[16];
	int n = children_of(pid, hosts, 16);
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	int left = n;
	for (int t = 0; t < 300 && left > 0; t++) {
		sleep_ms(10);
		left = 0;
		for (int i = 0; i < n; i++)
			left += !gone(hosts[i]);
	}
	check(got == 1 && c == 1, "SIGKILLed child: it had signed and verified with a host of its own");
	check(n >= 1 && left == 0, "SIGKILLed child: its host (%d process(es)) ended within 3 s: %d left", n, left);
	sign_verify(s, sv);
	check(sv[0] == CKR_OK && sv[1] == CKR_OK, "parent after the SIGKILLed child: sign %s, verify %s",
	      ckr_name(sv[0]), ckr_name(sv[1]));
}

/* closing_child: a child that closes every fd after the fork (as daemons
 * do) and opens files of its own, which take the numbers of the library's
 * inherited fds (the log, the host image). Its calls work, a fault is
 * logged to the log file and nothing reaches the child's own files. */
static void closing_child(CK_SESSION_HANDLE s)
{
	int res[2];
	CK_RV r[6] = { CKR_GENERAL_ERROR, CKR_GENERAL_ERROR, CKR_GENERAL_ERROR,
		       CKR_GENERAL_ERROR, CKR_GENERAL_ERROR, CKR_GENERAL_ERROR },
	      sv[2];
	char path[4200];
	const char *log = getenv("P11ISOLATE_LOG");

	if (pipe(res) != 0)
		return;
	pid_t pid = fork();
	if (pid == 0) {
		CK_SESSION_HANDLE cs;
		int w = res[1];
		if (w != 3) {
			w = dup2(res[1], 3); /* the only fd it keeps */
			close(res[1]);
		}
		for (int fd = 4; fd < 1024; fd++)
			close(fd);
		for (int i = 0; i < 16; i++) {
			snprintf(path, sizeof path, "%s.app%d", log, i);
			open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
		}
		CK_RV init = F->C_Initialize(NULL);
		if ((init == CKR_OK || init == CKR_CRYPTOKI_ALREADY_INITIALIZED) && child_session(&cs) == CKR_OK) {
			sign_verify(cs, r);
			arm("segv:C_Sign");
			sign_verify(cs, &r[2]); /* r[2]: the fault */
			arm("none");
			if (child_session(&cs) == CKR_OK)
				sign_verify(cs, &r[4]); /* signed again */
		}
		ssize_t unused = write(w, r, sizeof r);
		(void)unused;
		_exit(0);
	}
	close(res[1]);
	ssize_t got = read(res[0], r, sizeof r);
	close(res[0]);
	waitpid(pid, NULL, 0);
	int leaked = 0;
	for (int i = 0; i < 16; i++) {
		char buf[256] = "";
		snprintf(path, sizeof path, "%s.app%d", log, i);
		FILE *f = fopen(path, "r");
		if (f != NULL) {
			leaked += fread(buf, 1, sizeof buf - 1, f) > 0;
			fclose(f);
		}
		unlink(path);
	}
	char line[64];
	snprintf(line, sizeof line, "p11isolate[%d]: the host", (int)pid);
	check(got == (ssize_t)sizeof r && r[0] == CKR_OK && r[1] == CKR_OK && r[2] == CKR_DEVICE_ERROR && r[4] == CKR_OK &&
		      r[5] == CKR_OK,
	      "child that closed every fd: sign %s, verify %s, the fault %s, then sign %s, verify %s", ckr_name(r[0]),
	      ckr_name(r[1]), ckr_name(r[2]), ckr_name(r[4]), ckr_name(r[5]));
	check(leaked == 0 && log_has(line), "child that closed every fd: the log file has its line, its own files nothing (%d written)",
	      leaked);
	sign_verify(s, sv);
	check(sv[0] == CKR_OK && sv[1] == CKR_OK, "parent after that child: sign %s, verify %s", ckr_name(sv[0]),
	      ckr_name(sv[1]));
}

/* faults: in a forked child, the host's crash, hang and lie are the
 * child's CKR_DEVICE_ERROR and a fresh host, never the parent's; a child
 * SIGKILLed takes its host along. */
static int faults(void)
{
	static const struct {
		const char *spec, *log;
	} cases[] = {
		{ "segv:C_Sign", "died during C_Sign: it was killed by signal SIGSEGV" },
		{ "hang:C_Sign", "passed its deadline" },
		{ "biglen:C_Sign", "cannot be true" },
	};
	CK_SESSION_HANDLE s;
	CK_OBJECT_HANDLE pub, priv;
	CK_RV sv[2], rv;

	arm("none");
	if (F->C_Initialize(NULL) != CKR_OK || F->C_OpenSession(token_slot(), CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &s) != CKR_OK ||
	    F->C_Login(s, CKU_USER, (CK_UTF8CHAR_PTR)pin, strlen(pin)) != CKR_OK || make_key(s, &pub, &priv) != CKR_OK)
		return 2;
	sign_verify(s, sv);
	check(sv[0] == CKR_OK && sv[1] == CKR_OK, "parent: sign %s, verify %s", ckr_name(sv[0]), ckr_name(sv[1]));
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		int res[2];
		if (pipe(res) != 0)
			return 2;
		pid_t pid = fork();
		if (pid == 0) {
			CK_SESSION_HANDLE cs;
			CK_RV r[4] = { CKR_GENERAL_ERROR, CKR_GENERAL_ERROR, CKR_GENERAL_ERROR, CKR_GENERAL_ERROR };
			CK_RV init = F->C_Initialize(NULL);
			if ((init == CKR_OK || init == CKR_CRYPTOKI_ALREADY_INITIALIZED) && child_session(&cs) == CKR_OK) {
				arm(cases[i].spec);
				sign_verify(cs, r); /* the fault: r[0] */
				arm("none");
				r[2] = child_session(&cs); /* a fresh host */
				if (r[2] == CKR_OK)
					sign_verify(cs, &r[2]);
			}
			ssize_t unused = write(res[1], r, sizeof r);
			(void)unused;
			_exit(0);
		}
		close(res[1]);
		CK_RV r[4] = { 0 };
		ssize_t got = read(res[0], r, sizeof r);
		close(res[0]);
		waitpid(pid, NULL, 0);
		check(got == (ssize_t)sizeof r && r[0] == CKR_DEVICE_ERROR, "child, %s: C_Sign = %s", cases[i].spec,
		      ckr_name(r[0]));
		check(got == (ssize_t)sizeof r && r[2] == CKR_OK && r[3] == CKR_OK,
		      "child, %s: then a fresh host: sign %s, verify %s", cases[i].spec, ckr_name(r[2]), ckr_name(r[3]));
		check(log_has(cases[i].log), "child, %s: the log says \"%s\"", cases[i].spec, cases[i].log);
		sign_verify(s, sv);
		check(sv[0] == CKR_OK && sv[1] == CKR_OK, "parent after the child's %s: sign %s, verify %s", cases[i].spec,
		      ckr_name(sv[0]), ckr_name(sv[1]));
	}
	killed_child(s);
	closing_child(s);
	rv = F->C_Finalize(NULL);
	check(rv == CKR_OK, "parent: C_Finalize = %s", ckr_name(rv));
	printf("%d passed, %d failed\n", atomic_load(&n_ok), atomic_load(&n_fail));
	return atomic_load(&n_fail) ? 1 : 0;
}

int main(int argc, char **argv)
{
	CK_OBJECT_HANDLE pub, priv;
	CK_SESSION_HANDLE s, s2;
	CK_C_GetFunctionList get;
	pthread_t th;
	CK_RV rv, sv[2];
	int workers, ok = 0;
	void *lib;

	if (argc == 4 && strcmp(argv[3], "faults") == 0) {
		pin = argv[2];
		setvbuf(stdout, NULL, _IOLBF, 0);
		if ((lib = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL)) == NULL ||
		    (get = (CK_C_GetFunctionList)dlsym(lib, "C_GetFunctionList")) == NULL || get(&F) != CKR_OK ||
		    getenv("FAULTMOD_FILE") == NULL || getenv("P11ISOLATE_LOG") == NULL) {
			fprintf(stderr, "prefork: faults needs MODULE loadable, FAULTMOD_FILE and P11ISOLATE_LOG\n");
			return 2;
		}
		return faults();
	}
	if (argc < 4 || argc > 5 || (workers = atoi(argv[3])) < 1 || workers > 60 ||
	    (argc == 5 && strcmp(argv[4], "busy") != 0 && strcmp(argv[4], "uninit") != 0)) {
		fprintf(stderr, "usage: prefork MODULE PIN WORKERS (1..60) [busy|uninit]\n");
		return 2;
	}
	/* uninit: the parent loads the module but never calls C_Initialize;
	 * its children do (a child makes the key first). */
	int uninit = argc == 5 && strcmp(argv[4], "uninit") == 0;
	pin = argv[2];
	setvbuf(stdout, NULL, _IOLBF, 0);
	if ((lib = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL)) == NULL ||
	    (get = (CK_C_GetFunctionList)dlsym(lib, "C_GetFunctionList")) == NULL || get(&F) != CKR_OK) {
		fprintf(stderr, "prefork: cannot load %s\n", argv[1]);
		return 2;
	}
	sh = mmap(NULL, sizeof *sh, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (sh == MAP_FAILED)
		return 2;
	sh->want = workers + 1; /* the grandchild signs too */
	for (int i = 0; i <= workers; i++)
		for (int j = 0; j < 4; j++)
			sh->rv[i][j] = CKR_GENERAL_ERROR; /* a worker that never reported fails */

	if (uninit) {
		pid_t p = fork();
		if (p == 0) {
			rv = F->C_Initialize(NULL);
			if (rv == CKR_OK && (rv = F->C_OpenSession(token_slot(), CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL,
							      NULL, &s)) == CKR_OK &&
			    (rv = F->C_Login(s, CKU_USER, (CK_UTF8CHAR_PTR)pin, strlen(pin))) == CKR_OK)
				rv = make_key(s, &pub, &priv);
			if (rv == CKR_OK)
				sign_verify(s, sv);
			F->C_Finalize(NULL);
			_exit(rv == CKR_OK && sv[0] == CKR_OK && sv[1] == CKR_OK ? 0 : 1);
		}
		int st = 0;
		waitpid(p, &st, 0);
		check(WIFEXITED(st) && WEXITSTATUS(st) == 0,
		      "a child of the never-initialized parent: C_Initialize, a key pair on the token, sign and verify (status 0x%x)",
		      st);
	} else {
		CK_C_INITIALIZE_ARGS ia = { .flags = CKF_OS_LOCKING_OK };
		rv = F->C_Initialize(&ia);
		check(rv == CKR_OK, "parent: C_Initialize = %s", ckr_name(rv));
		rv = F->C_OpenSession(token_slot(), CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &s);
		check(rv == CKR_OK, "parent: C_OpenSession = %s", ckr_name(rv));
		rv = F->C_Login(s, CKU_USER, (CK_UTF8CHAR_PTR)pin, strlen(pin));
		check(rv == CKR_OK, "parent: C_Login = %s", ckr_name(rv));
		rv = make_key(s, &pub, &priv);
		check(rv == CKR_OK, "parent: EC P-256 key pair on the token = %s", ckr_name(rv));
		sign_verify(s, sv);
		check(sv[0] == CKR_OK && sv[1] == CKR_OK, "parent: sign %s, verify %s", ckr_name(sv[0]), ckr_name(sv[1]));
	}

	int with_busy = argc == 5 && !uninit;
	if (with_busy) {
		F->C_OpenSession(token_slot(), CKF_SERIAL_SESSION, NULL, NULL, &s2);
		pthread_create(&th, NULL, busy, &s2);
	}
	pid_t pids[64];
	for (int i = 0; i < workers; i++) {
		sleep_ms(250); /* a little apart: SoftHSM2 rewrites its token file at every login */
		pids[i] = fork();
		if (pids[i] == 0) {
			/* Worker 0 also forks a grandchild (verdicts in slot workers). */
			worker(i, i == 0 ? workers : -1);
			_exit(0);
		}
	}
	for (int i = 0; i < workers; i++) {
		int st;
		waitpid(pids[i], &st, 0);
		check(WIFEXITED(st) && WEXITSTATUS(st) == 0, "worker %d ended normally (status 0x%x)", i, st);
	}
	if (with_busy) {
		atomic_store(&stop, 1);
		pthread_join(th, NULL);
		check(atomic_load(&busy_fail) == 0, "parent thread: %ld calls during the forks, %ld failed",
		      atomic_load(&busy_calls), atomic_load(&busy_fail));
	}

	for (int i = 0; i <= workers; i++) {
		CK_RV *r = sh->rv[i];
		int good = initialized(r[0]) && r[1] == CKR_OK && r[2] == CKR_OK && r[3] == CKR_OK;
		ok += good;
		char who[48];
		if (i == workers)
			snprintf(who, sizeof who, "grandchild (a fork of worker 0)");
		else
			snprintf(who, sizeof who, "worker %d", i);
		check(good, "%s: C_Initialize %s, C_Login %s, sign %s, verify %s", who, ckr_name(r[0]), ckr_name(r[1]),
		      ckr_name(r[2]), ckr_name(r[3]));
	}
	if (uninit) {
		CK_INFO info;
		rv = F->C_GetInfo(&info);
		check(rv == CKR_CRYPTOKI_NOT_INITIALIZED, "parent after the workers, still not initialized: C_GetInfo = %s",
		      ckr_name(rv));
	} else {
		sign_verify(s, sv);
		check(sv[0] == CKR_OK && sv[1] == CKR_OK, "parent after the workers: sign %s, verify %s", ckr_name(sv[0]),
		      ckr_name(sv[1]));
		F->C_DestroyObject(s, pub);
		F->C_DestroyObject(s, priv);
		F->C_Finalize(NULL);
	}
	note("prefork: %d of %d workers (and the grandchild) signed and verified", ok, workers + 1);
	printf("%d passed, %d failed\n", atomic_load(&n_ok), atomic_load(&n_fail));
	return atomic_load(&n_fail) ? 1 : 0;
}
