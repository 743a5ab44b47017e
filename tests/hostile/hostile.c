/* hostile: broken and hostile input against libp11isolate.so (issue 9).
 *
 *   hostile LIB SOFTHSM FAULTMOD PIN
 *
 * Each class of the issue is a section, run in a process of its own so that
 * a crash is an observation ("section ... ended by SIGSEGV"), never the end
 * of the run:
 *
 *   initargs  C_Initialize with pInitArgs or pReserved the application got
 *             wrong (unreadable, unterminated): the answer of SoftHSM2 loaded
 *             directly (CKR_ARGUMENTS_BAD), never a crash in the proxy
 *   lies      a vendor (faultmod) that answers CKR_OK with lengths and counts
 *             past the application's buffers: loaded directly the lie reaches
 *             the application; through the proxy the call fails with
 *             CKR_DEVICE_ERROR, nothing is written, the log names function,
 *             claim and capacity, and the next call gets a fresh host. And
 *             CKR_BUFFER_TOO_SMALL with an attribute length past its buffer:
 *             the application gets CK_UNAVAILABLE_INFORMATION
 *   codes     return codes no PKCS#11 version defines become
 *             CKR_GENERAL_ERROR (logged); defined and vendor-defined ones pass
 *   hangs     a module that never returns from its ELF constructor,
 *             C_GetFunctionList or C_Initialize: C_Initialize fails with
 *             CKR_DEVICE_ERROR within the deadline and leaves no process;
 *             an application killed while its host hangs in the vendor
 *             leaves no process a second later (sandbox default and off)
 *   structs   output structures reach the vendor holding the application's
 *             bytes: every byte the same as SoftHSM2 loaded directly
 *
 * The environment comes from tests/hostile/run.sh: SOFTHSM2_CONF (a
 * throwaway token), FAULTMOD_FILE, P11ISOLATE_LOG, P11ISOLATE_TIMEOUT.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <p11-kit/pkcs11.h>

#include "../common/ckr.h"
#include "../common/report.h"
#include "../common/tls_prf.h"

static const char *lib_path, *softhsm_path, *faultmod_path, *pin;
static const char *fault_file, *log_path;

#define TIMEOUT_S 2 /* P11ISOLATE_TIMEOUT of run.sh */

static double now_s(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static CK_FUNCTION_LIST_PTR load(const char *path)
{
	void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	CK_C_GetFunctionList get;
	CK_FUNCTION_LIST_PTR f = NULL;

	if (h == NULL) {
		note("cannot load %s: %s", path, dlerror());
		exit(2);
	}
	get = (CK_C_GetFunctionList)dlsym(h, "C_GetFunctionList");
	if (get == NULL || get(&f) != CKR_OK) {
		note("%s: no function list", path);
		exit(2);
	}
	return f;
}

/* arm makes spec the fault of faultmod (FAULTMOD_FILE), replacing the file
 * so the new arming restarts its count. */
static void arm(const char *spec)
{
	char tmp[4096];
	FILE *f;

	snprintf(tmp, sizeof tmp, "%s.tmp", fault_file);
	f = fopen(tmp, "w");
	if (f == NULL || fprintf(f, "%s\n", spec) < 0 || fclose(f) != 0 || rename(tmp, fault_file) != 0) {
		note("cannot arm %s: %s", spec, strerror(errno));
		exit(2);
	}
}

/* The log written since off. */
static off_t log_size(void)
{
	struct stat st;
	return stat(log_path, &st) == 0 ? st.st_size : 0;
}

static char *log_since(off_t off)
{
	static char buf[1 << 16];
	int fd = open(log_path, O_RDONLY | O_CLOEXEC);
	ssize_t n = 0;

	buf[0] = '\0';
	if (fd >= 0) {
		n = pread(fd, buf, sizeof buf - 1, off);
		close(fd);
	}
	buf[n > 0 ? n : 0] = '\0';
	return buf;
}

/* ------------------------------------------------------------------ */
/* Processes                                                           */

struct proc {
	pid_t pid, ppid;
	char state;
	unsigned long long start;
};

static int read_proc(pid_t pid, struct proc *p)
{
	char path[64], buf[1024], *q;
	int fd, ppid;
	ssize_t n;

	snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	n = read(fd, buf, sizeof buf - 1);
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = '\0';
	q = strrchr(buf, ')');
	if (q == NULL || sscanf(q + 1, " %c %d %*d %*d %*d %*d %*u %*u %*u %*u %*u %*u %*u %*d %*d %*d %*d %*d %*d %llu",
				&p->state, &ppid, &p->start) != 3)
		return -1;
	p->pid = pid;
	p->ppid = ppid;
	return 0;
}

#define MAXP 4096

/* descendants lists every live process below root into out. */
static int descendants(pid_t root, struct proc *out, int max)
{
	static struct proc all[MAXP];
	int n = 0, found = 0, grew = 1;
	DIR *d = opendir("/proc");
	struct dirent *de;

	while (d != NULL && (de = readdir(d)) != NULL && n < MAXP) {
		char *end;
		long pid = strtol(de->d_name, &end, 10);
		if (*end == '\0' && pid > 0 && read_proc((pid_t)pid, &all[n]) == 0)
			n++;
	}
	if (d != NULL)
		closedir(d);
	while (grew) {
		grew = 0;
		for (int i = 0; i < n; i++) {
			int in = 0, parent = all[i].ppid == root;
			for (int j = 0; j < found; j++) {
				in |= out[j].pid == all[i].pid;
				parent |= out[j].pid == all[i].ppid;
			}
			if (!in && parent && found < max && all[i].state != 'Z') {
				out[found++] = all[i];
				grew = 1;
			}
		}
	}
	return found;
}

/* still_there counts the processes of list that are alive (not gone,
 * not a zombie, not a reused pid). */
static int still_there(const struct proc *list, int n)
{
	int alive = 0;
	for (int i = 0; i < n; i++) {
		struct proc p;
		if (read_proc(list[i].pid, &p) == 0 && p.start == list[i].start && p.state != 'Z')
			alive++;
	}
	return alive;
}

/* The host process tree of this process (its init and the host). */
static int my_hosts(struct proc *out, int max) { return descendants(getpid(), out, max); }

/* ------------------------------------------------------------------ */
/* Sections                                                            */

static CK_SLOT_ID first_slot(CK_FUNCTION_LIST_PTR F)
{
	CK_SLOT_ID slots[8];
	CK_ULONG n = 8;

	if (F->C_GetSlotList(CK_TRUE, slots, &n) != CKR_OK || n == 0) {
		note("no slot with a token");
		exit(2);
	}
	return slots[0];
}

/* initargs: what the proxy reads for itself must never fault. */
static void section_initargs(void)
{
	CK_FUNCTION_LIST_PTR D = load(softhsm_path), F = load(lib_path);
	CK_C_INITIALIZE_ARGS args;
	long page = sysconf(_SC_PAGESIZE);
	char *two, *tail;
	CK_RV direct, rv;

	memset(&args, 0, sizeof args);
	args.pReserved = (CK_VOID_PTR)1;
	direct = D->C_Initialize(&args);
	if (direct == CKR_OK)
		D->C_Finalize(NULL);
	check(direct == CKR_ARGUMENTS_BAD, "SoftHSM2 directly: C_Initialize(pReserved=1) = %s", ckr_name(direct));

	rv = F->C_Initialize(&args);
	check(rv == direct, "proxy: C_Initialize(pReserved=(CK_VOID_PTR)1) = %s, directly %s", ckr_name(rv),
	      ckr_name(direct));

	/* A string that runs into an unmapped page without its NUL. */
	two = mmap(NULL, (size_t)page * 2, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (two == MAP_FAILED || munmap(two + page, (size_t)page) != 0) {
		note("mmap: %s", strerror(errno));
		exit(2);
	}
	memset(two, 'x', (size_t)page);
	tail = two + page - 16;
	args.pReserved = tail;
	direct = D->C_Initialize(&args);
	if (direct == CKR_OK)
		D->C_Finalize(NULL);
	rv = F->C_Initialize(&args);
	check(rv == CKR_ARGUMENTS_BAD && rv == direct,
	      "proxy: C_Initialize(pReserved = unterminated before an unmapped page) = %s, directly %s",
	      ckr_name(rv), ckr_name(direct));

	/* pInitArgs itself unreadable (directly, SoftHSM2 would crash: not run). */
	rv = F->C_Initialize((CK_VOID_PTR)16);
	check(rv == CKR_ARGUMENTS_BAD, "proxy: C_Initialize(pInitArgs=(CK_VOID_PTR)16) = %s", ckr_name(rv));
	rv = F->C_Initialize(two + page);
	check(rv == CKR_ARGUMENTS_BAD, "proxy: C_Initialize(pInitArgs in an unmapped page) = %s", ckr_name(rv));

	/* Output pointers no vendor could write through, on calls that fail
	 * before writing: the vendor's error, not a crash. */
	rv = F->C_Initialize(NULL);
	check(rv == CKR_OK, "proxy: C_Initialize(NULL) after the refused ones = %s", ckr_name(rv));
	rv = F->C_GetSessionInfo(0xdead, (CK_SESSION_INFO_PTR)1);
	CK_RV rvd = D->C_Initialize(NULL);
	CK_RV want = D->C_GetSessionInfo(0xdead, (CK_SESSION_INFO_PTR)1);
	if (rvd == CKR_OK)
		D->C_Finalize(NULL);
	check(rv == want, "proxy: C_GetSessionInfo(bad session, (CK_SESSION_INFO_PTR)1) = %s, directly %s",
	      ckr_name(rv), ckr_name(want));
	rv = F->C_GetObjectSize(0xdead, 1, (CK_ULONG_PTR)8);
	check(rv == CKR_SESSION_HANDLE_INVALID, "proxy: C_GetObjectSize(bad session, (CK_ULONG_PTR)8) = %s",
	      ckr_name(rv));
	CK_INFO info;
	rv = F->C_GetInfo(&info);
	check(rv == CKR_OK, "proxy: C_GetInfo afterwards = %s", ckr_name(rv));
	F->C_Finalize(NULL);
}

/* One lie: its spec, the function, and what it claims. */
enum lie_call { L_ATTR, L_NESTED, L_FIND, L_SIGN, L_SLOTS, L_MECHS, L_PRF };

struct lie {
	const char *spec;
	enum lie_call call;
	CK_RV want_direct; /* what faultmod, loaded directly, answers */
	const char *fn;
};

static const struct lie lies[] = {
	{ "biglen:C_GetAttributeValue", L_ATTR, CKR_OK, "C_GetAttributeValue" },
	{ "hugelen:C_GetAttributeValue", L_ATTR, CKR_OK, "C_GetAttributeValue" },
	{ "bignested:C_GetAttributeValue", L_NESTED, CKR_OK, "C_GetAttributeValue" },
	{ "biglen:C_FindObjects", L_FIND, CKR_OK, "C_FindObjects" },
	{ "hugelen:C_FindObjects", L_FIND, CKR_OK, "C_FindObjects" },
	{ "biglen:C_Sign", L_SIGN, CKR_OK, "C_Sign" },
	{ "hugelen:C_Sign", L_SIGN, CKR_OK, "C_Sign" },
	{ "biglen:C_GetSlotList", L_SLOTS, CKR_OK, "C_GetSlotList" },
	{ "biglen:C_GetMechanismList", L_MECHS, CKR_OK, "C_GetMechanismList" },
	{ "bigparam:C_DeriveKey", L_PRF, CKR_OK, "C_DeriveKey" },
};

#define CAP 128
#define CANARY 0x5a

/* What one lying call left in the application. */
struct seen {
	CK_RV rv;
	CK_ULONG claim, capacity; /* the length or count the application got, and its room */
	int intact;               /* the buffer (and everything past it) unchanged */
};

struct ctx {
	CK_FUNCTION_LIST_PTR F;
	CK_SLOT_ID slot;
	CK_SESSION_HANDLE s;
	CK_OBJECT_HANDLE pub, priv, secret;
};

static CK_BBOOL yes = CK_TRUE, no = CK_FALSE;

/* session opens a session, logs in and makes session keys: an EC P-256
 * pair and a generic secret; after a host restart everything is new. */
static int session(struct ctx *c)
{
	static const CK_BYTE p256[] = { 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07 };
	CK_MECHANISM ecgen = { CKM_EC_KEY_PAIR_GEN, NULL, 0 }, gen = { CKM_GENERIC_SECRET_KEY_GEN, NULL, 0 };
	CK_ULONG len = 32;
	CK_ATTRIBUTE pubt[] = { { CKA_EC_PARAMS, (void *)p256, sizeof p256 }, { CKA_TOKEN, &no, 1 } };
	CK_ATTRIBUTE privt[] = { { CKA_SIGN, &yes, 1 }, { CKA_TOKEN, &no, 1 }, { CKA_LABEL, "hostile", 7 } };
	CK_ATTRIBUTE sect[] = { { CKA_VALUE_LEN, &len, sizeof len }, { CKA_TOKEN, &no, 1 }, { CKA_DERIVE, &yes, 1 } };
	CK_RV rv;

	c->slot = first_slot(c->F);
	if ((rv = c->F->C_OpenSession(c->slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &c->s)) != CKR_OK ||
	    ((rv = c->F->C_Login(c->s, CKU_USER, (CK_UTF8CHAR_PTR)pin, strlen(pin))) != CKR_OK &&
	     rv != CKR_USER_ALREADY_LOGGED_IN) ||
	    (rv = c->F->C_GenerateKeyPair(c->s, &ecgen, pubt, 2, privt, 3, &c->pub, &c->priv)) != CKR_OK ||
	    (rv = c->F->C_GenerateKey(c->s, &gen, sect, 3, &c->secret)) != CKR_OK) {
		note("session setup: %s", ckr_name(rv));
		return 0;
	}
	return 1;
}

static int all_canary(const CK_BYTE *b, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (b[i] != CANARY)
			return 0;
	return 1;
}

/* lie_call makes the call of l into guarded memory and records it. */
static void lie_call(struct ctx *c, const struct lie *l, struct seen *out)
{
	/* The buffer sits at the start of a zone of canaries: nothing past
	 * its capacity may change. */
	static CK_BYTE zone[4 * CAP];
	CK_FUNCTION_LIST_PTR F = c->F;

	memset(zone, CANARY, sizeof zone);
	memset(out, 0, sizeof *out);
	switch (l->call) {
	case L_ATTR: {
		CK_ATTRIBUTE t = { CKA_LABEL, zone, CAP };
		out->rv = F->C_GetAttributeValue(c->s, c->priv, &t, 1);
		out->claim = t.ulValueLen, out->capacity = CAP;
		out->intact = out->rv != CKR_OK ? all_canary(zone, sizeof zone) : all_canary(zone + CAP, 3 * CAP);
		break;
	}
	case L_NESTED: {
		CK_ATTRIBUTE inner = { CKA_CLASS, zone, CAP };
		CK_ATTRIBUTE t = { CKA_WRAP_TEMPLATE, &inner, sizeof inner };
		out->rv = F->C_GetAttributeValue(c->s, c->secret, &t, 1);
		out->claim = inner.ulValueLen, out->capacity = CAP;
		out->intact = all_canary(zone + CAP, 3 * CAP) && inner.pValue == zone;
		break;
	}
	case L_FIND: {
		CK_ULONG n = 0;
		CK_OBJECT_HANDLE *h = (CK_OBJECT_HANDLE *)zone;
		F->C_FindObjectsInit(c->s, NULL, 0);
		out->rv = F->C_FindObjects(c->s, h, 4, &n);
		F->C_FindObjectsFinal(c->s);
		out->claim = n, out->capacity = 4;
		out->intact = all_canary(zone + 4 * sizeof *h, sizeof zone - 4 * sizeof *h);
		break;
	}
	case L_SIGN: {
		CK_MECHANISM m = { CKM_ECDSA, NULL, 0 };
		CK_BYTE digest[32] = { 1 };
		CK_ULONG n = CAP;
		F->C_SignInit(c->s, &m, c->priv);
		out->rv = F->C_Sign(c->s, digest, sizeof digest, zone, &n);
		out->claim = n, out->capacity = CAP;
		out->intact = all_canary(zone + CAP, 3 * CAP);
		break;
	}
	case L_SLOTS:
	case L_MECHS: {
		CK_ULONG n = 4;
		if (l->call == L_SLOTS)
			out->rv = F->C_GetSlotList(CK_FALSE, (CK_SLOT_ID_PTR)zone, &n);
		else
			out->rv = F->C_GetMechanismList(c->slot, (CK_MECHANISM_TYPE_PTR)zone, &n);
		out->claim = n, out->capacity = 4;
		out->intact = all_canary(zone + 4 * sizeof(CK_ULONG), sizeof zone - 4 * sizeof(CK_ULONG));
		break;
	}
	case L_PRF: {
		struct tls_prf_params prf;
		CK_BYTE seed[16] = { 2 };
		CK_ULONG n = 32;
		CK_OBJECT_HANDLE k = CK_INVALID_HANDLE;
		CK_MECHANISM m = { CKM_TLS_PRF, &prf, sizeof prf };
		prf.pSeed = seed, prf.ulSeedLen = sizeof seed;
		prf.pLabel = (CK_BYTE_PTR) "label", prf.ulLabelLen = 5;
		prf.pOutput = zone, prf.pulOutputLen = &n;
		out->rv = F->C_DeriveKey(c->s, &m, c->secret, NULL, 0, &k);
		out->claim = n, out->capacity = 32;
		out->intact = all_canary(zone + 32, sizeof zone - 32);
		break;
	}
	}
}

/* The host of this process, for telling a restart: the pid of its init (or
 * of the host itself when it has none). */
static pid_t host_pid(void)
{
	struct proc ps[16];
	int n = my_hosts(ps, 16);
	for (int i = 0; i < n; i++)
		if (ps[i].ppid == getpid())
			return ps[i].pid;
	return 0;
}

/* lies, direct: faultmod really lies (so the proxy's checks are tested). */
static void section_lies_direct(void)
{
	struct ctx c = { .F = load(faultmod_path) };
	struct seen s;

	if (c.F->C_Initialize(NULL) != CKR_OK || !session(&c))
		exit(2);
	for (size_t i = 0; i < sizeof lies / sizeof lies[0]; i++) {
		arm(lies[i].spec);
		lie_call(&c, &lies[i], &s);
		arm("none");
		check(s.rv == lies[i].want_direct && s.claim > s.capacity,
		      "directly: %s tells the application %s with %lu for room for %lu", lies[i].spec,
		      ckr_name(s.rv), (unsigned long)s.claim, (unsigned long)s.capacity);
	}
	c.F->C_Finalize(NULL);
}

/* lies, through the proxy: refused whole, logged, the host restarted. */
static void section_lies_proxy(void)
{
	struct ctx c = { .F = load(lib_path) };
	struct seen s;

	if (c.F->C_Initialize(NULL) != CKR_OK || !session(&c))
		exit(2);
	for (size_t i = 0; i < sizeof lies / sizeof lies[0]; i++) {
		const struct lie *l = &lies[i];
		pid_t before = host_pid();
		off_t off = log_size();
		CK_ULONG start_claim;

		arm(l->spec);
		lie_call(&c, l, &s);
		arm("none");
		start_claim = l->call == L_FIND ? 0 : s.capacity;
		check(s.rv == CKR_DEVICE_ERROR, "proxy: %s: %s, want CKR_DEVICE_ERROR", l->spec, ckr_name(s.rv));
		check(s.claim == start_claim && s.intact,
		      "proxy: %s: the application's length/count is %lu (was %lu), memory %s", l->spec,
		      (unsigned long)s.claim, (unsigned long)start_claim, s.intact ? "untouched" : "WRITTEN");
		const char *log = log_since(off);
		char want[64];
		snprintf(want, sizeof want, "%s: the reply of", l->fn);
		check(strstr(log, want) != NULL && strstr(log, "cannot be true") != NULL,
		      "proxy: %s: one log line names the function and the lie", l->spec);
		if (strstr(log, want) != NULL) {
			const char *line = strstr(log, want), *end = strchr(line, '\n');
			note("log: %.*s", end ? (int)(end - line) : (int)strlen(line), line);
		}
		/* The host's state can no longer be trusted: a fresh one serves
		 * the next call. */
		CK_SESSION_INFO si;
		CK_RV rv = c.F->C_GetSessionInfo(c.s, &si);
		int fresh = session(&c);
		pid_t after = host_pid();
		check(fresh && before != 0 && after != 0 && after != before,
		      "proxy: %s: old session %s, then a new host (pid %d, was %d) serves a new session", l->spec,
		      ckr_name(rv), (int)after, (int)before);
	}

	/* The spec's rule where the vendor breaks it: CKR_BUFFER_TOO_SMALL
	 * for an attribute with a buffer means CK_UNAVAILABLE_INFORMATION. */
	struct lie small = { "smallattr:C_GetAttributeValue", L_ATTR, CKR_BUFFER_TOO_SMALL, "C_GetAttributeValue" };
	pid_t before = host_pid();
	arm(small.spec);
	lie_call(&c, &small, &s);
	arm("none");
	check(s.rv == CKR_BUFFER_TOO_SMALL && s.claim == CK_UNAVAILABLE_INFORMATION && s.intact,
	      "proxy: %s: %s, ulValueLen 0x%lx (want CK_UNAVAILABLE_INFORMATION), buffer %s", small.spec,
	      ckr_name(s.rv), (unsigned long)s.claim, s.intact ? "untouched" : "WRITTEN");
	check(host_pid() == before, "proxy: %s: the host stays (a spec violation mended, not a lie)", small.spec);
	c.F->C_Finalize(NULL);
}

/* smallattr, directly: the vendor's own number reaches the application. */
static void section_small_direct(void)
{
	struct ctx c = { .F = load(faultmod_path) };
	struct lie small = { "smallattr:C_GetAttributeValue", L_ATTR, CKR_BUFFER_TOO_SMALL, "C_GetAttributeValue" };
	struct seen s;

	if (c.F->C_Initialize(NULL) != CKR_OK || !session(&c))
		exit(2);
	arm(small.spec);
	lie_call(&c, &small, &s);
	arm("none");
	check(s.rv == CKR_BUFFER_TOO_SMALL && s.claim > CAP && s.claim != CK_UNAVAILABLE_INFORMATION,
	      "directly: %s gives the application %s with ulValueLen %lu for a buffer of %d", small.spec,
	      ckr_name(s.rv), (unsigned long)s.claim, CAP);
	c.F->C_Finalize(NULL);
}

/* codes: undefined return codes become CKR_GENERAL_ERROR. */
static void section_codes(void)
{
	static const struct {
		CK_RV vendor, want;
	} codes[] = {
		{ 0x7fffffffUL, CKR_GENERAL_ERROR },
		{ 0x14UL, CKR_GENERAL_ERROR },
		{ 0x20aUL, CKR_GENERAL_ERROR },
		{ CKR_PIN_EXPIRED, CKR_PIN_EXPIRED },
		{ 0x209UL, 0x209UL }, /* CKR_PARAMETER_SET_NOT_SUPPORTED, 3.2 */
		{ 0x42UL, 0x42UL },   /* CKR_AEAD_DECRYPT_FAILED, 3.0 */
		{ CKR_VENDOR_DEFINED | 0x123, CKR_VENDOR_DEFINED | 0x123 },
	};
	CK_FUNCTION_LIST_PTR F = load(lib_path), D = load(faultmod_path);
	CK_INFO info;

	if (F->C_Initialize(NULL) != CKR_OK || D->C_Initialize(NULL) != CKR_OK)
		exit(2);
	for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++) {
		char spec[64], raw[32];
		off_t off = log_size();
		snprintf(spec, sizeof spec, "rv=0x%lx:C_GetInfo", (unsigned long)codes[i].vendor);
		arm(spec);
		CK_RV direct = D->C_GetInfo(&info);
		arm(spec);
		CK_RV rv = F->C_GetInfo(&info);
		arm("none");
		check(direct == codes[i].vendor && rv == codes[i].want, "%s: directly 0x%lx, through the proxy %s (want %s)",
		      spec, (unsigned long)direct, ckr_name(rv), ckr_name(codes[i].want));
		snprintf(raw, sizeof raw, "0x%lx", (unsigned long)codes[i].vendor);
		if (codes[i].want == CKR_GENERAL_ERROR)
			check(strstr(log_since(off), raw) != NULL, "%s: the log names the raw value %s", spec, raw);
	}
	check(F->C_GetInfo(&info) == CKR_OK, "proxy: C_GetInfo afterwards");
	F->C_Finalize(NULL);
	D->C_Finalize(NULL);
}

/* hang_init: C_Initialize against a module that hangs where env says. */
static void hang_init(const char *what, const char *var, const char *val)
{
	pid_t app = fork();
	if (app == 0) {
		atomic_store(&n_ok, 0);
		atomic_store(&n_fail, 0);
		if (var != NULL)
			setenv(var, val, 1);
		else
			arm(val);
		CK_FUNCTION_LIST_PTR F = load(lib_path);
		double t0 = now_s();
		CK_RV rv = F->C_Initialize(NULL);
		double took = now_s() - t0;
		struct proc ps[64];
		int n = my_hosts(ps, 64), left = n;
		for (int i = 0; i < 20 && left > 0; i++) {
			usleep(50000);
			left = still_there(ps, n);
		}
		check(rv == CKR_DEVICE_ERROR && took < TIMEOUT_S + 3,
		      "%s: C_Initialize = %s after %.1f s (timeout %d s)", what, ckr_name(rv), took, TIMEOUT_S);
		check(left == 0, "%s: %d of the host's processes left 1 s later", what, left);
		exit(finish());
	}
	int st;
	waitpid(app, &st, 0);
	check(WIFEXITED(st) && WEXITSTATUS(st) == 0, "%s: the application process ended normally", what);
}

/* hang_kill: the application is SIGKILLed while its host hangs loading the
 * vendor (no deadline): everything of the host ends within a second. */
static void hang_kill(const char *sandbox)
{
	pid_t app = fork();
	if (app == 0) {
		setenv("FAULTMOD_CTOR", "hang", 1);
		setenv("P11ISOLATE_TIMEOUT", "0", 1);
		setenv("P11ISOLATE_SANDBOX", sandbox, 1);
		CK_FUNCTION_LIST_PTR F = load(lib_path);
		F->C_Initialize(NULL);
		_exit(3);
	}
	struct proc ps[64];
	int n = 0;
	for (int i = 0; i < 100 && n == 0; i++) {
		usleep(50000);
		n = descendants(app, ps, 64);
	}
	usleep(300000); /* let the host get into the vendor's constructor */
	n = descendants(app, ps, 64);
	check(n > 0, "sandbox=%s: the hung host runs (%d processes)", sandbox, n);
	kill(app, SIGKILL);
	waitpid(app, NULL, 0);
	double t0 = now_s();
	int left = still_there(ps, n);
	while (left > 0 && now_s() - t0 < 1.0) {
		usleep(20000);
		left = still_there(ps, n);
	}
	check(left == 0, "sandbox=%s: application SIGKILLed while its host hangs in the vendor: %d of %d host processes left after %.2f s",
	      sandbox, left, n, now_s() - t0);
	for (int i = 0; i < n; i++)
		kill(ps[i].pid, SIGKILL); /* whatever a failure left */
}

static void section_hangs(void)
{
	hang_init("hang in the ELF constructor", "FAULTMOD_CTOR", "hang");
	hang_init("hang in C_GetFunctionList", NULL, "hang:C_GetFunctionList");
	hang_init("hang in C_Initialize", NULL, "hang:C_Initialize");
	arm("none");
	hang_kill("default");
	hang_kill("off");
}

/* structs: the vendor starts from the application's bytes. */
static void section_structs(void)
{
	CK_FUNCTION_LIST_PTR D = load(softhsm_path), F = load(lib_path);
	CK_MECHANISM_TYPE mechs[] = { CKM_SHA256, CKM_AES_CBC, CKM_ECDSA, CKM_RSA_PKCS };
	static const int fills[] = { 0x00, 0xa5, 0xff };
	CK_SLOT_ID sd, sp;

	if (D->C_Initialize(NULL) != CKR_OK || F->C_Initialize(NULL) != CKR_OK)
		exit(2);
	sd = first_slot(D), sp = first_slot(F);
	for (size_t f = 0; f < sizeof fills / sizeof fills[0]; f++) {
		for (size_t i = 0; i < sizeof mechs / sizeof mechs[0]; i++) {
			CK_MECHANISM_INFO a, b;
			memset(&a, fills[f], sizeof a);
			memset(&b, fills[f], sizeof b);
			CK_RV ra = D->C_GetMechanismInfo(sd, mechs[i], &a), rb = F->C_GetMechanismInfo(sp, mechs[i], &b);
			check(ra == rb && memcmp(&a, &b, sizeof a) == 0,
			      "C_GetMechanismInfo(0x%lx) into bytes 0x%02x: flags directly 0x%lx, through the proxy 0x%lx",
			      (unsigned long)mechs[i], fills[f], (unsigned long)a.flags, (unsigned long)b.flags);
		}
		CK_INFO ia, ib;
		memset(&ia, fills[f], sizeof ia);
		memset(&ib, fills[f], sizeof ib);
		CK_RV ra = D->C_GetInfo(&ia), rb = F->C_GetInfo(&ib);
		check(ra == rb && memcmp(&ia, &ib, sizeof ia) == 0, "C_GetInfo into bytes 0x%02x: every byte the same",
		      fills[f]);
		CK_SLOT_INFO sa, sb;
		memset(&sa, fills[f], sizeof sa);
		memset(&sb, fills[f], sizeof sb);
		ra = D->C_GetSlotInfo(sd, &sa), rb = F->C_GetSlotInfo(sp, &sb);
		check(ra == rb && memcmp(&sa, &sb, sizeof sa) == 0, "C_GetSlotInfo into bytes 0x%02x: every byte the same",
		      fills[f]);
	}
	F->C_Finalize(NULL);
	D->C_Finalize(NULL);
}

/* ------------------------------------------------------------------ */

static void run_section(const char *name, void (*fn)(void))
{
	pid_t pid;
	int st;

	note("--- %s", name);
	fflush(stdout);
	pid = fork();
	if (pid == 0) {
		atomic_store(&n_ok, 0);
		atomic_store(&n_fail, 0);
		fn();
		exit(finish());
	}
	waitpid(pid, &st, 0);
	if (WIFSIGNALED(st))
		check(0, "section %s: killed by signal %s", name, strsignal(WTERMSIG(st)));
	else
		check(WEXITSTATUS(st) == 0, "section %s: every check passed (exit status %d)", name, WEXITSTATUS(st));
}

int main(int argc, char **argv)
{
	static const struct {
		const char *name;
		void (*fn)(void);
	} sections[] = {
		{ "initargs", section_initargs },   { "lies-direct", section_lies_direct },
		{ "lies", section_lies_proxy },     { "small-direct", section_small_direct },
		{ "codes", section_codes },         { "hangs", section_hangs },
		{ "structs", section_structs },
	};
	const char *only = getenv("HOSTILE_ONLY");

	if (argc != 5) {
		fprintf(stderr, "usage: hostile LIB SOFTHSM FAULTMOD PIN\n");
		return 2;
	}
	lib_path = argv[1], softhsm_path = argv[2], faultmod_path = argv[3], pin = argv[4];
	fault_file = getenv("FAULTMOD_FILE");
	log_path = getenv("P11ISOLATE_LOG");
	if (fault_file == NULL || log_path == NULL) {
		fprintf(stderr, "hostile: FAULTMOD_FILE and P11ISOLATE_LOG must be set (tests/hostile/run.sh does)\n");
		return 2;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	for (size_t i = 0; i < sizeof sections / sizeof sections[0]; i++) {
		if (only == NULL || strstr(only, sections[i].name) != NULL)
			run_section(sections[i].name, sections[i].fn);
	}
	return finish();
}
