/*
 * faultmod: a fault-injecting PKCS#11 module for tests.
 *
 * It loads a real PKCS#11 module (env FAULTMOD_MODULE, default SoftHSM2)
 * and exports a function list whose entries forward every call unchanged
 * to the real module.  Before forwarding, each entry checks whether a fault
 * is armed for it and, if so, fires it (crash, hang, exit, ...).
 *
 * Fault spec: KIND:FUNCTION[:N]   e.g. segv:C_Sign, hang:C_FindObjects:3
 *   taken from the first line of the file named by env FAULTMOD_FILE when
 *   that file exists and its first line is non-empty (re-read on every
 *   call), otherwise from env FAULTMOD_FAULT.  "none" or "off" disarms.
 *   FUNCTION "*" matches every function except C_GetFunctionList.
 *   The fault fires on the N-th (default 1st) matching call counted from
 *   the moment the spec became active; it fires once per arming.
 *
 * See README.md next to this file for the list of fault kinds.
 *
 * Build:
 *   gcc -std=gnu11 -O2 -g -fPIC -shared -Wall -Wextra -Werror \
 *       -I/usr/include/p11-kit-1 -o build/tests/libfaultmod.so \
 *       tests/faultmod/faultmod.c -ldl -lpthread
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <p11-kit/pkcs11.h>

#include "../common/tls_prf.h"

#define DEFAULT_MODULE "/usr/lib/softhsm/libsofthsm2.so"

/*
 * Every function-list entry except C_GetFunctionList, in PKCS#11 2.40
 * order: X(name, arity, parameter types...).
 */
#define FAULTMOD_FUNCTIONS(X)                                                  \
	X(C_Initialize, 1, CK_VOID_PTR)                                        \
	X(C_Finalize, 1, CK_VOID_PTR)                                          \
	X(C_GetInfo, 1, CK_INFO_PTR)                                           \
	X(C_GetSlotList, 3, CK_BBOOL, CK_SLOT_ID_PTR, CK_ULONG_PTR)            \
	X(C_GetSlotInfo, 2, CK_SLOT_ID, CK_SLOT_INFO_PTR)                      \
	X(C_GetTokenInfo, 2, CK_SLOT_ID, CK_TOKEN_INFO_PTR)                    \
	X(C_GetMechanismList, 3, CK_SLOT_ID, CK_MECHANISM_TYPE_PTR,            \
	  CK_ULONG_PTR)                                                        \
	X(C_GetMechanismInfo, 3, CK_SLOT_ID, CK_MECHANISM_TYPE,                \
	  CK_MECHANISM_INFO_PTR)                                               \
	X(C_InitToken, 4, CK_SLOT_ID, CK_UTF8CHAR_PTR, CK_ULONG,               \
	  CK_UTF8CHAR_PTR)                                                     \
	X(C_InitPIN, 3, CK_SESSION_HANDLE, CK_UTF8CHAR_PTR, CK_ULONG)          \
	X(C_SetPIN, 5, CK_SESSION_HANDLE, CK_UTF8CHAR_PTR, CK_ULONG,           \
	  CK_UTF8CHAR_PTR, CK_ULONG)                                           \
	X(C_OpenSession, 5, CK_SLOT_ID, CK_FLAGS, CK_VOID_PTR, CK_NOTIFY,      \
	  CK_SESSION_HANDLE_PTR)                                               \
	X(C_CloseSession, 1, CK_SESSION_HANDLE)                                \
	X(C_CloseAllSessions, 1, CK_SLOT_ID)                                   \
	X(C_GetSessionInfo, 2, CK_SESSION_HANDLE, CK_SESSION_INFO_PTR)         \
	X(C_GetOperationState, 3, CK_SESSION_HANDLE, CK_BYTE_PTR,              \
	  CK_ULONG_PTR)                                                        \
	X(C_SetOperationState, 5, CK_SESSION_HANDLE, CK_BYTE_PTR, CK_ULONG,    \
	  CK_OBJECT_HANDLE, CK_OBJECT_HANDLE)                                  \
	X(C_Login, 4, CK_SESSION_HANDLE, CK_USER_TYPE, CK_UTF8CHAR_PTR,        \
	  CK_ULONG)                                                            \
	X(C_Logout, 1, CK_SESSION_HANDLE)                                      \
	X(C_CreateObject, 4, CK_SESSION_HANDLE, CK_ATTRIBUTE_PTR, CK_ULONG,    \
	  CK_OBJECT_HANDLE_PTR)                                                \
	X(C_CopyObject, 5, CK_SESSION_HANDLE, CK_OBJECT_HANDLE,                \
	  CK_ATTRIBUTE_PTR, CK_ULONG, CK_OBJECT_HANDLE_PTR)                    \
	X(C_DestroyObject, 2, CK_SESSION_HANDLE, CK_OBJECT_HANDLE)             \
	X(C_GetObjectSize, 3, CK_SESSION_HANDLE, CK_OBJECT_HANDLE,             \
	  CK_ULONG_PTR)                                                        \
	X(C_GetAttributeValue, 4, CK_SESSION_HANDLE, CK_OBJECT_HANDLE,         \
	  CK_ATTRIBUTE_PTR, CK_ULONG)                                          \
	X(C_SetAttributeValue, 4, CK_SESSION_HANDLE, CK_OBJECT_HANDLE,         \
	  CK_ATTRIBUTE_PTR, CK_ULONG)                                          \
	X(C_FindObjectsInit, 3, CK_SESSION_HANDLE, CK_ATTRIBUTE_PTR,           \
	  CK_ULONG)                                                            \
	X(C_FindObjects, 4, CK_SESSION_HANDLE, CK_OBJECT_HANDLE_PTR,           \
	  CK_ULONG, CK_ULONG_PTR)                                              \
	X(C_FindObjectsFinal, 1, CK_SESSION_HANDLE)                            \
	X(C_EncryptInit, 3, CK_SESSION_HANDLE, CK_MECHANISM_PTR,               \
	  CK_OBJECT_HANDLE)                                                    \
	X(C_Encrypt, 5, CK_SESSION_HANDLE, CK_BYTE_PTR, CK_ULONG, CK_BYTE_PTR, \
	  CK_ULONG_PTR)                                                        \
	X(C_EncryptUpdate, 5, CK_SESSION_HANDLE, CK_BYTE_PTR, CK_ULONG,        \
	  CK_BYTE_PTR, CK_ULONG_PTR)                                           \
	X(C_EncryptFinal, 3, CK_SESSION_HANDLE, CK_BYTE_PTR, CK_ULONG_PTR)     \
	X(C_DecryptInit, 3, CK_SESSION_HANDLE, CK_MECHANISM_PTR,               \
	  CK_OBJECT_HANDLE)                                                    \
	X(C_Decrypt, 5, CK_SESSION_HANDLE, CK_BYTE_PTR, CK_ULONG, CK_BYTE_PTR, \
	  CK_ULONG_PTR)                                                        \
	X(C_DecryptUpdate, 5, CK_SESSION_HANDLE, CK_BYTE_PTR, CK_ULONG,        \
	  CK_BYTE_PTR, CK_ULONG_PTR)                                           \
	X(C_DecryptFinal, 3, CK_SESSION_HANDLE, CK_BYTE_PTR, CK_ULONG_PTR)     \
	X(C_DigestInit, 2, CK_SESSION_HANDLE, CK_MECHANISM_PTR)                \
	X(C_Digest, 5, CK_SESSION_HANDLE, CK_BYTE_PTR, CK_ULONG, CK_BYTE_PTR,  \
	  CK_ULONG_PTR)                                                        \
	X(C_DigestUpdate, 3, CK_SESSION_HANDLE, CK_BYTE_PTR, CK_ULONG)         \
	X(C_DigestKey, 2, CK_SESSION_HANDLE, CK_OBJECT_HANDLE)                 \
	X(C_DigestFinal, 3, CK_SESSION_HANDLE, CK_BYTE_PTR, CK_ULONG_PTR)      \
	X(C_SignInit, 3, CK_SESSION_HANDLE, CK_MECHANISM_PTR,                  \
	  CK_OBJECT_HANDLE)                                                    \
	X(C_Sign, 5, CK_SESSION_HANDLE, CK_BYTE_PTR, CK_ULONG, CK_BYTE_PTR,    \
	  CK_ULONG_PTR)                                                        \
	X(C_SignUpdate, 3, CK_SESSION_HANDLE, CK_BYTE_PTR, CK_ULONG)           \
	X(C_SignFinal, 3, CK_SESSION_HANDLE, CK_BYTE_PTR, CK_ULONG_PTR)        \
	X(C_SignRecoverInit, 3, CK_SESSION_HANDLE, CK_MECHANISM_PTR,           \
	  CK_OBJECT_HANDLE)                                                    \
	X(C_SignRecover, 5, CK_SESSION_HANDLE, CK_BYTE_PTR, CK_ULONG,          \
	  CK_BYTE_PTR, CK_ULONG_PTR)                                           \
	X(C_VerifyInit, 3, CK_SESSION_HANDLE, CK_MECHANISM_PTR,                \
	  CK_OBJECT_HANDLE)                                                    \
	X(C_Verify, 5, CK_SESSION_HANDLE, CK_BYTE_PTR, CK_ULONG, CK_BYTE_PTR,  \
	  CK_ULONG)                                                            \
	X(C_VerifyUpdate, 3, CK_SESSION_HANDLE, CK_BYTE_PTR, CK_ULONG)         \
	X(C_VerifyFinal, 3, CK_SESSION_HANDLE, CK_BYTE_PTR, CK_ULONG)          \
	X(C_VerifyRecoverInit, 3, CK_SESSION_HANDLE, CK_MECHANISM_PTR,         \
	  CK_OBJECT_HANDLE)                                                    \
	X(C_VerifyRecover, 5, CK_SESSION_HANDLE, CK_BYTE_PTR, CK_ULONG,        \
	  CK_BYTE_PTR, CK_ULONG_PTR)                                           \
	X(C_DigestEncryptUpdate, 5, CK_SESSION_HANDLE, CK_BYTE_PTR, CK_ULONG,  \
	  CK_BYTE_PTR, CK_ULONG_PTR)                                           \
	X(C_DecryptDigestUpdate, 5, CK_SESSION_HANDLE, CK_BYTE_PTR, CK_ULONG,  \
	  CK_BYTE_PTR, CK_ULONG_PTR)                                           \
	X(C_SignEncryptUpdate, 5, CK_SESSION_HANDLE, CK_BYTE_PTR, CK_ULONG,    \
	  CK_BYTE_PTR, CK_ULONG_PTR)                                           \
	X(C_DecryptVerifyUpdate, 5, CK_SESSION_HANDLE, CK_BYTE_PTR, CK_ULONG,  \
	  CK_BYTE_PTR, CK_ULONG_PTR)                                           \
	X(C_GenerateKey, 5, CK_SESSION_HANDLE, CK_MECHANISM_PTR,               \
	  CK_ATTRIBUTE_PTR, CK_ULONG, CK_OBJECT_HANDLE_PTR)                    \
	X(C_GenerateKeyPair, 8, CK_SESSION_HANDLE, CK_MECHANISM_PTR,           \
	  CK_ATTRIBUTE_PTR, CK_ULONG, CK_ATTRIBUTE_PTR, CK_ULONG,              \
	  CK_OBJECT_HANDLE_PTR, CK_OBJECT_HANDLE_PTR)                          \
	X(C_WrapKey, 6, CK_SESSION_HANDLE, CK_MECHANISM_PTR, CK_OBJECT_HANDLE, \
	  CK_OBJECT_HANDLE, CK_BYTE_PTR, CK_ULONG_PTR)                         \
	X(C_UnwrapKey, 8, CK_SESSION_HANDLE, CK_MECHANISM_PTR,                 \
	  CK_OBJECT_HANDLE, CK_BYTE_PTR, CK_ULONG, CK_ATTRIBUTE_PTR, CK_ULONG, \
	  CK_OBJECT_HANDLE_PTR)                                                \
	X(C_DeriveKey, 6, CK_SESSION_HANDLE, CK_MECHANISM_PTR,                 \
	  CK_OBJECT_HANDLE, CK_ATTRIBUTE_PTR, CK_ULONG, CK_OBJECT_HANDLE_PTR)  \
	X(C_SeedRandom, 3, CK_SESSION_HANDLE, CK_BYTE_PTR, CK_ULONG)           \
	X(C_GenerateRandom, 3, CK_SESSION_HANDLE, CK_BYTE_PTR, CK_ULONG)       \
	X(C_GetFunctionStatus, 1, CK_SESSION_HANDLE)                           \
	X(C_CancelFunction, 1, CK_SESSION_HANDLE)                              \
	X(C_WaitForSlotEvent, 3, CK_FLAGS, CK_SLOT_ID_PTR, CK_VOID_PTR)

/* PARAMS_n(T1..Tn) -> "T1 a1, ..., Tn an";  ARGS_n -> "a1, ..., an". */
#define PARAMS_1(t1) t1 a1
#define PARAMS_2(t1, t2) PARAMS_1(t1), t2 a2
#define PARAMS_3(t1, t2, t3) PARAMS_2(t1, t2), t3 a3
#define PARAMS_4(t1, t2, t3, t4) PARAMS_3(t1, t2, t3), t4 a4
#define PARAMS_5(t1, t2, t3, t4, t5) PARAMS_4(t1, t2, t3, t4), t5 a5
#define PARAMS_6(t1, t2, t3, t4, t5, t6) PARAMS_5(t1, t2, t3, t4, t5), t6 a6
#define PARAMS_8(t1, t2, t3, t4, t5, t6, t7, t8)                               \
	PARAMS_6(t1, t2, t3, t4, t5, t6), t7 a7, t8 a8
#define ARGS_1 a1
#define ARGS_2 ARGS_1, a2
#define ARGS_3 ARGS_2, a3
#define ARGS_4 ARGS_3, a4
#define ARGS_5 ARGS_4, a5
#define ARGS_6 ARGS_5, a6
#define ARGS_8 ARGS_6, a7, a8
/* WORDS_n -> the arguments as machine words, for the lies. */
#define WORDS_1 (uintptr_t)a1
#define WORDS_2 WORDS_1, (uintptr_t)a2
#define WORDS_3 WORDS_2, (uintptr_t)a3
#define WORDS_4 WORDS_3, (uintptr_t)a4
#define WORDS_5 WORDS_4, (uintptr_t)a5
#define WORDS_6 WORDS_5, (uintptr_t)a6
#define WORDS_8 WORDS_6, (uintptr_t)a7, (uintptr_t)a8

/* Function ids: FN_C_GetFunctionList, then one per list entry above. */
enum fn_id {
	FN_C_GetFunctionList,
#define X(name, ...) FN_##name,
	FAULTMOD_FUNCTIONS(X)
#undef X
	FN_COUNT
};

static const char *const fn_names[FN_COUNT] = {
	"C_GetFunctionList",
#define X(name, ...) #name,
	FAULTMOD_FUNCTIONS(X)
#undef X
};

/* ---------------------------------------------------------------------- */
/* Fault kinds                                                            */

#define FAULTMOD_KINDS(K)                                                      \
	K(segv) K(hlt) K(bus) K(ill) K(fpe) K(abort) K(stack) K(kill)          \
	K(exit0) K(exit3) K(hang) K(spin) K(oom) K(fork) K(thread)            \
	K(biglen) K(hugelen) K(bignested) K(smallattr) K(bigparam) K(rv)

enum fault_kind {
#define K(kind) KIND_##kind,
	FAULTMOD_KINDS(K)
#undef K
	KIND_COUNT
};

static const char *const kind_names[KIND_COUNT] = {
#define K(kind) #kind,
	FAULTMOD_KINDS(K)
#undef K
};

#define FN_ANY (-1) /* "*": any function except C_GetFunctionList */

static void *volatile sink;          /* makes oom's memory escape */
static volatile int stop_recursion;  /* always 0; defeats infinite-recursion analysis */

static int recurse(int depth)
{
	volatile char frame[4096];

	frame[0] = (char)depth;
	if (stop_recursion)
		return frame[0];
	return recurse(depth + 1) + frame[0]; /* not a tail call */
}

static void *sleep_forever(void *unused)
{
	(void)unused;
	for (;;)
		sleep(1000);
	return NULL;
}

static void fire(enum fault_kind kind)
{
	switch (kind) {
	case KIND_segv: {
		/* Both volatile, so the compiler can neither see the NULL
		 * nor drop the store. */
		volatile int *volatile p = NULL;
		*p = 1;
		break;
	}
	case KIND_hlt:
#if defined(__x86_64__) || defined(__i386__)
		__asm__ volatile("hlt"); /* privileged: #GP -> SIGSEGV */
#else
		raise(SIGSEGV);
#endif
		break;
	case KIND_bus: {
		long page = sysconf(_SC_PAGESIZE);
		int fd = memfd_create("faultmod-bus", MFD_CLOEXEC);
		FILE *f = NULL;
		if (fd < 0 && (f = tmpfile()) != NULL)
			fd = fileno(f);
		if (fd >= 0) {
			/* Map one page of an empty file; touching it is past EOF. */
			volatile char *p = mmap(NULL, (size_t)page,
						PROT_READ | PROT_WRITE,
						MAP_SHARED, fd, 0);
			if (p != MAP_FAILED)
				p[0] = 1;
		}
		raise(SIGBUS); /* only reached if the setup failed */
		break;
	}
	case KIND_ill:
#if defined(__x86_64__) || defined(__i386__)
		__asm__ volatile("ud2");
#else
		__builtin_trap();
#endif
		break;
	case KIND_fpe: {
#if defined(__x86_64__) || defined(__i386__)
		/* Both operands volatile: a constant dividend lets the
		 * compiler replace the division with compares. */
		volatile int one = 1, zero = 0;
		volatile int r = one / zero;
		(void)r;
#else
		raise(SIGFPE); /* integer division does not trap everywhere */
#endif
		break;
	}
	case KIND_abort:
		abort();
	case KIND_stack:
		recurse(0);
		break;
	case KIND_kill:
		raise(SIGKILL);
		break;
	case KIND_exit0:
		exit(0);
	case KIND_exit3:
		_exit(3);
	case KIND_hang:
		sleep_forever(NULL);
		break;
	case KIND_spin: {
		volatile unsigned long counter = 0;
		for (;;)
			counter++;
	}
	case KIND_oom: {
		const size_t chunk = (size_t)64 << 20;
		for (;;) {
			void *p = malloc(chunk);
			if (p != NULL) {
				memset(p, 0xa5, chunk);
				sink = p;
			}
		}
	}
	case KIND_fork:
		if (fork() == 0)
			sleep_forever(NULL);
		break;
	case KIND_thread: {
		pthread_t t;
		if (pthread_create(&t, NULL, sleep_forever, NULL) == 0)
			pthread_detach(t);
		break;
	}
	case KIND_biglen:
	case KIND_hugelen:
	case KIND_bignested:
	case KIND_smallattr:
	case KIND_bigparam:
	case KIND_rv:
	case KIND_COUNT:
		break; /* lies: told after the real call (tell_lie) */
	}
}

/* ---------------------------------------------------------------------- */
/* Fault spec: where it comes from, parsing, and per-arming call counting */

#define SPEC_MAX 256

struct armed {
	uint64_t key;          /* identity of the spec text + its source */
	int valid;             /* parsed OK and not "none"/"off" */
	enum fault_kind kind;
	CK_RV rv;              /* rv: the code returned instead */
	int fn;                /* enum fn_id or FN_ANY */
	unsigned long nth;     /* fire on this matching call (1-based) */
	unsigned long hits;    /* matching calls so far (atomic) */
};

/* Current arming.  Replaced (and the old one leaked: a few bytes per
 * change, test-only) whenever the spec changes, so no locks are needed. */
static struct armed *current;

static uint64_t fnv1a(uint64_t h, const void *data, size_t len)
{
	const unsigned char *p = data;

	for (size_t i = 0; i < len; i++)
		h = (h ^ p[i]) * 1099511628211ULL;
	return h;
}

/* Cut buf down to its first line, without surrounding blanks. */
static void first_line(char *buf)
{
	size_t start = strspn(buf, " \t");
	size_t len = strcspn(buf + start, "\r\n");

	while (len > 0 && (buf[start + len - 1] == ' ' ||
			   buf[start + len - 1] == '\t'))
		len--;
	memmove(buf, buf + start, len);
	buf[len] = '\0';
}

/*
 * Put the active spec into buf and return a key identifying it, or 0 if
 * no spec is active.  For the file, the key also covers its inode and
 * mtime, so rewriting the file (even with the same text) normally re-arms
 * the fault and restarts the count.
 */
static uint64_t read_spec(char buf[SPEC_MAX])
{
	uint64_t key = 1469598103934665603ULL;
	const char *path = getenv("FAULTMOD_FILE");
	const char *env;

	buf[0] = '\0';
	if (path != NULL && path[0] != '\0') {
		int fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd >= 0) {
			struct stat st;
			ssize_t n = read(fd, buf, SPEC_MAX - 1);
			buf[n > 0 ? n : 0] = '\0';
			first_line(buf);
			if (buf[0] != '\0' && fstat(fd, &st) == 0) {
				key = fnv1a(key, &st.st_dev, sizeof st.st_dev);
				key = fnv1a(key, &st.st_ino, sizeof st.st_ino);
				key = fnv1a(key, &st.st_mtim, sizeof st.st_mtim);
			}
			close(fd);
		}
	}
	if (buf[0] == '\0') {
		env = getenv("FAULTMOD_FAULT");
		if (env == NULL)
			return 0;
		snprintf(buf, SPEC_MAX, "%s", env);
		first_line(buf);
		if (buf[0] == '\0')
			return 0;
		key = fnv1a(key, "env", 3);
	}
	key = fnv1a(key, buf, strlen(buf));
	return key != 0 ? key : 1;
}

/* Parse "KIND:FUNCTION[:N]" into a; returns an error string or NULL. */
static const char *parse_spec(char *spec, struct armed *a)
{
	char *fn, *count, *end;
	int i;

	a->nth = 1;
	if (strcmp(spec, "none") == 0 || strcmp(spec, "off") == 0)
		return NULL;

	fn = strchr(spec, ':');
	if (fn == NULL)
		return "expected KIND:FUNCTION[:N]";
	*fn++ = '\0';
	count = strchr(fn, ':');
	if (count != NULL) {
		*count++ = '\0';
		errno = 0;
		a->nth = strtoul(count, &end, 10);
		if (count[0] < '0' || count[0] > '9' || *end != '\0' ||
		    errno != 0 || a->nth == 0)
			return "N must be a positive decimal integer";
	}

	if (strncmp(spec, "rv=", 3) == 0) {
		errno = 0;
		a->rv = strtoul(spec + 3, &end, 0);
		if (spec[3] == '\0' || *end != '\0' || errno != 0)
			return "rv=VALUE needs a number (0x7fffffff)";
		spec[2] = '\0';
	}
	for (i = 0; i < KIND_COUNT && strcmp(spec, kind_names[i]) != 0; i++)
		;
	if (i == KIND_COUNT)
		return "unknown fault kind";
	a->kind = (enum fault_kind)i;

	if (strcmp(fn, "*") == 0) {
		a->fn = FN_ANY;
	} else {
		for (i = 0; i < FN_COUNT && strcmp(fn, fn_names[i]) != 0; i++)
			;
		if (i == FN_COUNT)
			return "unknown function name";
		a->fn = i;
	}
	a->valid = 1;
	return NULL;
}

static struct armed *get_armed(void)
{
	char spec[SPEC_MAX];
	uint64_t key = read_spec(spec);
	struct armed *a, *cur = __atomic_load_n(&current, __ATOMIC_ACQUIRE);
	const char *err;
	char shown[SPEC_MAX];

	if (key == 0)
		return NULL;
	if (cur != NULL && cur->key == key)
		return cur;

	a = calloc(1, sizeof *a);
	if (a == NULL)
		return NULL;
	a->key = key;
	snprintf(shown, sizeof shown, "%s", spec);
	err = parse_spec(spec, a);

	if (!__atomic_compare_exchange_n(&current, &cur, a, 0,
					 __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
		/* Another thread installed an arming first; use that one. */
		free(a);
		return cur;
	}
	if (err != NULL)
		fprintf(stderr, "faultmod: ignoring fault spec \"%s\": %s\n",
			shown, err);
	return a;
}

static int is_lie(enum fault_kind kind)
{
	return kind >= KIND_biglen && kind <= KIND_rv;
}

/* Called at the top of every entry point.  Fires a fault that acts before
 * the call; returns the arming of a lie, which the entry tells after the
 * real call.  Leaves errno untouched. */
static struct armed *maybe_fire(enum fn_id fn)
{
	int saved_errno = errno;
	struct armed *a = get_armed(), *lie = NULL;

	if (a != NULL && a->valid &&
	    (a->fn == (int)fn || (a->fn == FN_ANY && fn != FN_C_GetFunctionList)) &&
	    __atomic_add_fetch(&a->hits, 1, __ATOMIC_RELAXED) == a->nth) {
		if (is_lie(a->kind))
			lie = a;
		else
			fire(a->kind);
	}
	errno = saved_errno;
	return lie;
}

/* ---------------------------------------------------------------------- */
/* Lies: the real call runs, then its outputs are falsified               */

#define BIG 4096


#define HUGE_LEN ((CK_ULONG)-16)

/* Where a function's (buffer, length) or (list, count) output is: argument
 * indexes (0-based), or -1. */
static void output_of(enum fn_id fn, int *buf, int *len)
{
	*buf = *len = -1;
	switch (fn) {
	case FN_C_GetOperationState:
	case FN_C_EncryptFinal:
	case FN_C_DecryptFinal:
	case FN_C_DigestFinal:
	case FN_C_SignFinal:
	case FN_C_GetSlotList:
	case FN_C_GetMechanismList:
		*buf = 1, *len = 2;
		break;
	case FN_C_Encrypt:
	case FN_C_EncryptUpdate:
	case FN_C_Decrypt:
	case FN_C_DecryptUpdate:
	case FN_C_Digest:
	case FN_C_Sign:
	case FN_C_SignRecover:
	case FN_C_VerifyRecover:
	case FN_C_DigestEncryptUpdate:
	case FN_C_DecryptDigestUpdate:
	case FN_C_SignEncryptUpdate:
	case FN_C_DecryptVerifyUpdate:
		*buf = 3, *len = 4;
		break;
	case FN_C_WrapKey:
		*buf = 4, *len = 5;
		break;
	default:
		break;
	}
}


/* first_buffer is the first attribute of t[0..n) with a buffer: in a nested
 * template when nested is set. */
static CK_ATTRIBUTE *first_buffer(CK_ATTRIBUTE *t, CK_ULONG n, int nested)
{
	for (CK_ULONG i = 0; t != NULL && i < n; i++) {
		int is_tmpl = t[i].type == CKA_WRAP_TEMPLATE || t[i].type == CKA_UNWRAP_TEMPLATE ||
			      t[i].type == CKA_DERIVE_TEMPLATE;
		if (t[i].pValue == NULL)
			continue;
		if (nested && is_tmpl)
			return first_buffer(t[i].pValue, t[i].ulValueLen / sizeof(CK_ATTRIBUTE), 0);
		if (!nested && !is_tmpl)
			return &t[i];
	}
	return NULL;
}

/* What a lie needs of the application's arguments, saved before the real
 * call overwrites them: the capacity the application gave, the attribute
 * whose length C_GetAttributeValue lies about. */
static __thread CK_ULONG lie_capacity;
static __thread CK_ATTRIBUTE *lie_attr;

static void before_lie(struct armed *a, enum fn_id fn, const uintptr_t *av)
{
	int buf, len;

	output_of(fn, &buf, &len);
	lie_capacity = 0;
	if (len >= 0 && av[len] != 0)
		lie_capacity = *(CK_ULONG *)av[len];
	lie_attr = NULL;
	if (fn == FN_C_GetAttributeValue)
		lie_attr = first_buffer((CK_ATTRIBUTE *)av[2], (CK_ULONG)av[3], a->kind == KIND_bignested);
}

/* tell_lie falsifies the outputs of the call fn(av) that returned rv and
 * returns the code the caller gets. Lies that do not apply to fn change
 * nothing. */
static CK_RV tell_lie(struct armed *a, enum fn_id fn, CK_RV rv, const uintptr_t *av)
{
	int buf, len;
	CK_ULONG claim;

	if (a->kind == KIND_rv)
		return a->rv;
	if (fn == FN_C_GetAttributeValue) {
		CK_ATTRIBUTE *at = lie_attr;
		if (at == NULL)
			return rv;
		switch (a->kind) {
		case KIND_biglen:
		case KIND_bignested:
			at->ulValueLen += BIG;
			return CKR_OK;
		case KIND_hugelen:
			at->ulValueLen = HUGE_LEN;
			return CKR_OK;
		case KIND_smallattr:
			at->ulValueLen += BIG;
			return CKR_BUFFER_TOO_SMALL;
		default:
			return rv;
		}
	}
	if (fn == FN_C_FindObjects && av[3] != 0) {
		*(CK_ULONG *)av[3] = a->kind == KIND_hugelen ? HUGE_LEN : (CK_ULONG)av[2] + 512;
		return CKR_OK;
	}
	if (a->kind == KIND_bigparam && fn == FN_C_DeriveKey && av[1] != 0) {
		CK_MECHANISM *m = (CK_MECHANISM *)av[1];
		struct tls_prf_params *prf = m->pParameter;
		if (m->mechanism == CKM_TLS_PRF && prf != NULL && m->ulParameterLen == sizeof(*prf) &&
		    prf->pulOutputLen != NULL) {
			*prf->pulOutputLen += BIG;
			return CKR_OK;
		}
		return rv;
	}
	output_of(fn, &buf, &len);
	if (len < 0 || av[len] == 0 || av[buf] == 0 ||
	    (a->kind != KIND_biglen && a->kind != KIND_hugelen))
		return rv;
	claim = a->kind == KIND_hugelen ? HUGE_LEN : lie_capacity + BIG;
	*(CK_ULONG *)av[len] = claim;
	return CKR_OK;
}

/* ---------------------------------------------------------------------- */
/* Forwarding                                                             */

static CK_FUNCTION_LIST_PTR real;
static CK_FUNCTION_LIST wrapped;
static CK_RV load_rv = CKR_GENERAL_ERROR;
static pthread_once_t load_once = PTHREAD_ONCE_INIT;

#define X(name, n, ...)                                                        \
	static CK_RV fm_##name(PARAMS_##n(__VA_ARGS__))                        \
	{                                                                      \
		struct armed *lie = maybe_fire(FN_##name);                     \
		uintptr_t av[] = { WORDS_##n };                                \
		CK_RV rv;                                                      \
		if (lie != NULL)                                               \
			before_lie(lie, FN_##name, av);                        \
		rv = real->name(ARGS_##n);                                     \
		return lie != NULL ? tell_lie(lie, FN_##name, rv, av) : rv;    \
	}
FAULTMOD_FUNCTIONS(X)
#undef X

/* FAULTMOD_CTOR=hang makes loading the module never return: the fault a
 * vendor's ELF constructor can have. */
__attribute__((constructor)) static void faultmod_ctor(void)
{
	const char *c = getenv("FAULTMOD_CTOR");

	if (c != NULL && strcmp(c, "hang") == 0)
		sleep_forever(NULL);
}

static void load_real_module(void)
{
	const char *path = getenv("FAULTMOD_MODULE");
	CK_C_GetFunctionList get_list;
	void *handle;
	CK_RV rv;

	if (path == NULL || path[0] == '\0')
		path = DEFAULT_MODULE;
	/* Never dlclose()d: the real module lives as long as the process. */
	handle = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	if (handle == NULL) {
		fprintf(stderr, "faultmod: cannot load %s: %s\n", path, dlerror());
		return;
	}
	get_list = (CK_C_GetFunctionList)dlsym(handle, "C_GetFunctionList");
	if (get_list == NULL) {
		fprintf(stderr, "faultmod: %s has no C_GetFunctionList\n", path);
		return;
	}
	rv = get_list(&real);
	if (rv != CKR_OK || real == NULL) {
		fprintf(stderr, "faultmod: C_GetFunctionList of %s failed: 0x%lx\n",
			path, (unsigned long)rv);
		load_rv = rv != CKR_OK ? rv : CKR_GENERAL_ERROR;
		return;
	}

	wrapped.version = real->version;
	wrapped.C_GetFunctionList = C_GetFunctionList;
	/* Mirror the real list: entries it leaves NULL stay NULL here too. */
#define X(name, ...) wrapped.name = real->name != NULL ? fm_##name : NULL;
	FAULTMOD_FUNCTIONS(X)
#undef X
	load_rv = CKR_OK;
}

__attribute__((visibility("default"))) CK_RV
C_GetFunctionList(CK_FUNCTION_LIST_PTR_PTR list)
{
	maybe_fire(FN_C_GetFunctionList);
	pthread_once(&load_once, load_real_module);
	if (load_rv != CKR_OK)
		return load_rv;
	if (list == NULL)
		return CKR_ARGUMENTS_BAD;
	*list = &wrapped;
	return CKR_OK;
}
