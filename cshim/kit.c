/* kit: what hosts are started with, built from a plan (internal/plan, as
 * msgpack), and C_Initialize's arguments, read without faulting and
 * replayed to each host. Included by proxy/plane.c before supervise.c. */
#include "shim.h"

#include <errno.h>
#include <stddef.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The settings a host is started with, built from a plan (kit_parse). A
 * forked child keeps its parent's. */
struct p11i_kit {
	int refs;               /* the settings in force, and each host started with them */
	int exe_fd;             /* the verified host image (kit_exe) */
	dev_t exe_dev;          /* what exe_fd was opened on */
	ino_t exe_ino;
	int exe_sealed;         /* a sealed memfd: immutable, verified once */
	char *host;             /* the host binary setting (NULL: the embedded image) */
	char **argv, **envp;    /* the host's, envp already filtered */
	struct p11i_sandbox sb;
	unsigned wanted;        /* layers the profile asks for */
	char *sandbox_source;   /* where the sandbox setting came from, for the log */
	int env_passed, env_total;
	char *env_hint;         /* completes the log line of a vendor C_Initialize that failed */
	int64_t timeout_ns, keygen_ns;
	char *module, *module_sha256;
	uint64_t memory_limit;
	char *log_path;         /* NULL: stderr */
	char *trace_path;       /* NULL: no trace */
	char *vendor;           /* pReserved for the vendor; NULL: NULL */
	char *error;            /* while a plan is read: the settings could not be resolved */
};

/* exe_is_ours: whether the kit's exe_fd still is the image it opened (a
 * forked child that closed every fd may have reused the number). */
static int exe_is_ours(const struct p11i_kit *k)
{
	struct stat st;

	return k->exe_fd >= 0 && fstat(k->exe_fd, &st) == 0 && st.st_dev == k->exe_dev && st.st_ino == k->exe_ino;
}

/* kit_open_exe opens and verifies the host image for k: 0, or -1 with a
 * one-line reason logged. */
static int kit_open_exe(struct p11i_kit *k)
{
	char err[512];
	struct stat st;
	int fd = p11i_host_exe(k->host, err, sizeof err);

	if (fd < 0 || fstat(fd, &st) != 0) {
		p11i_log("%s", fd < 0 ? err : strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	k->exe_fd = fd;
	k->exe_dev = st.st_dev;
	k->exe_ino = st.st_ino;
	int seals = fcntl(fd, F_GET_SEALS);
	k->exe_sealed = seals >= 0 && (seals & F_SEAL_WRITE);
	return 0;
}

/* kit_exe returns the fd of the verified host image to execute. A sealed
 * memfd cannot change: verified once, it is used while it still is ours.
 * A binary on disk (where executable memfds are refused) could be
 * rewritten in place after it was verified: it is opened and hashed again
 * for every start. -1: logged. */
static int kit_exe(struct p11i_kit *k)
{
	if (k->exe_sealed && exe_is_ours(k))
		return k->exe_fd;
	if (exe_is_ours(k))
		close(k->exe_fd);
	k->exe_fd = -1;
	return kit_open_exe(k) == 0 ? k->exe_fd : -1;
}

static int key_is(const char *k, size_t n, const char *want) { return k != NULL && n == strlen(want) && memcmp(k, want, n) == 0; }

static void free_list(char **l)
{
	for (char **p = l; p != NULL && *p != NULL; p++)
		free(*p);
	free(l);
}

static void kit_free(struct p11i_kit *k)
{
	if (k == NULL)
		return;
	if (k->exe_fd >= 0 && exe_is_ours(k))
		close(k->exe_fd);
	free(k->host);
	free_list(k->argv);
	free_list(k->envp);
	free_list((char **)k->sb.argv_init);
	free_list((char **)k->sb.ro_paths);
	free_list((char **)k->sb.rw_paths);
	free_list((char **)k->sb.dev_files);
	free_list((char **)k->sb.private_dirs);
	free_list((char **)k->sb.keep_paths);
	free(k->sandbox_source);
	free(k->env_hint);
	free(k->module);
	free(k->module_sha256);
	free(k->log_path);
	free(k->trace_path);
	free(k->vendor);
	free(k->error);
	free(k);
}

#define MAX_RESERVED (64 << 10) /* pReserved: settings and vendor strings are far shorter */

CK_RV p11i_init_read(const void *argp, struct p11i_init *in)
{
	CK_C_INITIALIZE_ARGS args;

	memset(in, 0, sizeof *in);
	if (argp == NULL) {
		in->null = 1;
		return CKR_OK;
	}
	/* The proxy reads the arguments for itself (the vendor sees a
	 * replay), so it reads them with a copy that cannot fault: a pointer
	 * the application got wrong is its CKR_ARGUMENTS_BAD, never a crash. */
	if (p11i_copy_in(&args, argp, sizeof args) != 0) {
		p11i_log("C_Initialize: pInitArgs points at memory that cannot be read: returning CKR_ARGUMENTS_BAD");
		return CKR_ARGUMENTS_BAD;
	}
	/* CKF_LIBRARY_CANT_CREATE_OS_THREADS crosses like every other flag
	 * and the vendor answers it: the application's threads create no
	 * threads in the proxy but a host's log relay, and the host is a
	 * separate process. (GnuTLS and NSS always pass the flag; refusing it
	 * would lock GnuTLS out and serialize NSS.) */
	in->flags = args.flags;
	in->mutexes = (args.CreateMutex != NULL) | (args.DestroyMutex != NULL) << 1 | (args.LockMutex != NULL) << 2 |
		      (args.UnlockMutex != NULL) << 3;
	if (args.pReserved != NULL) {
		char *buf = malloc(MAX_RESERVED);
		long n = buf != NULL ? p11i_copy_string(buf, args.pReserved, MAX_RESERVED) : -1;
		if (n < 0) {
			free(buf);
			p11i_log("C_Initialize: pReserved is neither NULL nor a readable string of less than %d bytes: returning CKR_ARGUMENTS_BAD",
				 MAX_RESERVED);
			return CKR_ARGUMENTS_BAD;
		}
		in->reserved = strdup(buf);
		free(buf);
		if (in->reserved == NULL)
			return CKR_HOST_MEMORY;
	}
	return CKR_OK;
}

void p11i_init_free(struct p11i_init *in)
{
	free(in->reserved);
	in->reserved = NULL;
}

static void init_args_free(CK_C_INITIALIZE_ARGS *a)
{
	if (a != NULL)
		free(a->pReserved);
	free(a);
}

/* init_replay rebuilds the application's CK_C_INITIALIZE_ARGS for the
 * hosts, with the vendor's pReserved of the settings (NULL: the
 * application passed NULL and the settings have none). An application's
 * NULL with a vendor_reserved setting becomes arguments with no flags and
 * no callbacks, which mean what NULL means, holding the vendor's string:
 * the module (NSS's softokn) needs it whatever the application passed. */
static CK_C_INITIALIZE_ARGS *init_replay(const struct p11i_init *in, const char *vendor)
{
	CK_C_INITIALIZE_ARGS *a;
	/* Only which callbacks were set crosses; any non-NULL value will do. */
	void *marker = (void *)p11i_call;

	if ((in->null && vendor == NULL) || (a = calloc(1, sizeof *a)) == NULL)
		return NULL;
	if (in->null) {
		a->pReserved = strdup(vendor);
		return a;
	}
	a->flags = in->flags;
	if (in->mutexes & 1)
		a->CreateMutex = (CK_CREATEMUTEX)marker;
	if (in->mutexes & 2)
		a->DestroyMutex = (CK_DESTROYMUTEX)marker;
	if (in->mutexes & 4)
		a->LockMutex = (CK_LOCKMUTEX)marker;
	if (in->mutexes & 8)
		a->UnlockMutex = (CK_UNLOCKMUTEX)marker;
	if (vendor != NULL)
		a->pReserved = strdup(vendor);
	return a;
}

/* A plan's strings are views into it: copies, NUL-terminated. */
static char *plan_str(struct p11i_mpr *r)
{
	size_t n;
	const char *v = p11i_mpr_str(r, &n);
	char *s = malloc(n + 1);

	if (s != NULL) {
		if (n > 0)
			memcpy(s, v, n);
		s[n] = '\0';
	}
	return s;
}

/* plan_list reads nil or an array of strings as a NULL-terminated list. */
static char **plan_list(struct p11i_mpr *r)
{
	if (p11i_mpr_is_nil(r))
		return calloc(1, sizeof(char *));
	uint32_t n = p11i_mpr_array(r, 1 << 16);
	char **l = calloc((size_t)n + 1, sizeof(char *));
	for (uint32_t i = 0; i < n && l != NULL; i++)
		l[i] = plan_str(r);
	return l;
}

static int list_len(char *const *l)
{
	int n = 0;
	while (l != NULL && l[n] != NULL)
		n++;
	return n;
}

/* wanted_layers: the layers a profile asks for (README.md, "Isolation"). */
static unsigned wanted_layers(const struct p11i_sandbox *sb)
{
	unsigned w;

	if (sb->profile == P11I_SANDBOX_OFF)
		return 0;
	w = 1u << P11I_L_PIDNS | 1u << P11I_L_MNTNS | 1u << P11I_L_INIT | 1u << P11I_L_PROC | 1u << P11I_L_KEYRING |
	    1u << P11I_L_SECCOMP | 1u << P11I_L_LANDLOCK;
	w |= sb->drop_caps ? 1u << P11I_L_CAPS : 1u << P11I_L_USERNS;
	if (sb->profile == P11I_SANDBOX_STRICT) {
		w |= 1u << P11I_L_NETNS | 1u << P11I_L_IPCNS | 1u << P11I_L_LANDLOCK_FS;
		if (list_len(sb->private_dirs) > 0)
			w |= 1u << P11I_L_PRIVATE;
	}
	return w;
}

/* The keys of a plan and where each goes in a kit, generated from
 * internal/plan.Plan's tags (plan_keys_gen.inc). */
enum { K_STR, K_NSTR, K_OPT, K_LIST, K_I64, K_U64, K_INT, K_UINT, K_BOOL };
static const struct plan_key {
	const char *name;
	int kind;   /* K_*: string, string or nil, string or "" (both NULL), list of strings, integers, bool */
	size_t off; /* in struct p11i_kit */
	uint64_t max;
} plan_keys[] = {
#define KEY(name, kind, field, max) { name, kind, offsetof(struct p11i_kit, field), max }
#include "plan_keys_gen.inc"
#undef KEY
};

/* plan_field reads the value of key f into k. */
static void plan_field(struct p11i_mpr *r, struct p11i_kit *k, const struct plan_key *f)
{
	void *p = (char *)k + f->off;

	switch (f->kind) {
	case K_STR:
	case K_NSTR:
	case K_OPT:
		free(*(char **)p);
		*(char **)p = f->kind == K_NSTR && p11i_mpr_is_nil(r) ? NULL : plan_str(r);
		if (f->kind == K_OPT && *(char **)p != NULL && **(char **)p == '\0') {
			free(*(char **)p);
			*(char **)p = NULL;
		}
		break;
	case K_LIST:
		free_list(*(char ***)p);
		*(char ***)p = plan_list(r);
		break;
	case K_I64:
		*(int64_t *)p = (int64_t)p11i_mpr_uint_max(r, f->max, f->name);
		break;
	case K_U64:
		*(uint64_t *)p = p11i_mpr_uint(r);
		break;
	case K_INT:
		*(int *)p = (int)p11i_mpr_uint_max(r, f->max, f->name);
		break;
	case K_UINT:
		*(unsigned *)p = (unsigned)p11i_mpr_uint_max(r, f->max, f->name);
		break;
	case K_BOOL:
		*(int *)p = p11i_mpr_bool(r);
		break;
	}
}

/* kit_parse builds a kit from an encoded plan (internal/plan): it points
 * the log where the settings say, and opens and verifies the host image.
 * NULL when the plan says the settings are wrong, or the image cannot be
 * had: logged. */
static struct p11i_kit *kit_parse(const void *buf, size_t len)
{
	struct p11i_kit *k = calloc(1, sizeof *k);
	struct p11i_mpr r;
	const char *key;
	size_t n;

	if (k == NULL)
		return NULL;
	k->exe_fd = -1;
	p11i_mpr_init(&r, buf, len, NULL, 0);
	for (uint32_t i = p11i_mpr_map(&r, 64); i > 0 && !r.failed; i--) {
		key = p11i_mpr_str(&r, &n);
		const struct plan_key *f = NULL;
		for (size_t j = 0; j < sizeof plan_keys / sizeof plan_keys[0] && f == NULL; j++)
			if (key_is(key, n, plan_keys[j].name))
				f = &plan_keys[j];
		if (f != NULL)
			plan_field(&r, k, f);
		else /* a setting this side would silently drop */
			p11i_mpr_fail(&r, "unknown key \"%.*s\"", (int)n, key != NULL ? key : "");
	}
	if (p11i_mpr_finish(&r) != 0) {
		p11i_log("the settings' plan cannot be read (%s): rebuild libp11isolate.so and its host with make", r.why);
		goto fail;
	}
	if (p11i_log_open(k->log_path) != 0) {
		p11i_log("cannot open the log file %s: %s (set log=stderr or a writable path)", k->log_path, strerror(errno));
		goto fail;
	}
	if (trace_open(k->trace_path) != 0) {
		p11i_log("cannot open the trace file %s: %s (set trace to a writable path, or leave it empty)",
			 k->trace_path, strerror(errno));
		goto fail;
	}
	if (k->error != NULL && k->error[0] != '\0') {
		p11i_log("%s", k->error);
		goto fail;
	}
	if (k->module == NULL || k->module_sha256 == NULL || k->envp == NULL || k->sandbox_source == NULL ||
	    k->env_hint == NULL) {
		p11i_log("the settings' plan is incomplete: rebuild libp11isolate.so and its host with make");
		goto fail;
	}
	if (kit_open_exe(k) != 0)
		goto fail;
	k->argv = calloc(2, sizeof(char *));
	if (k->argv == NULL || (k->argv[0] = strdup("p11isolate-host")) == NULL)
		goto fail;
	k->sb.status_fd = -1;
	k->env_passed = list_len(k->envp);
	k->wanted = wanted_layers(&k->sb);
	free(k->error);
	k->error = NULL;
	return k;
fail:
	kit_free(k);
	return NULL;
}
