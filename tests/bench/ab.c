/* ab: two builds of libp11isolate.so (A and B) on one short operation, with
 * N threads, in alternating rounds of one second (A, B, A, B, ...): a
 * steadier comparison of two builds than the bench's short interleaved
 * slices, for operations where a few microseconds of scheduling noise per
 * call swamp the difference (2 threads on a 2-core machine).
 *
 *   ab LIB_A LIB_B OP THREADS [ROUNDS]
 *   OP: open (C_OpenSession + C_CloseSession), digest (C_DigestInit +
 *   C_Digest of 64 bytes), info (C_GetInfo)
 *
 * Prints each round's ops/s and the mean over the rounds after the first
 * (a warm-up), and B/A; and the 99th percentile of each op's latency over
 * those rounds (the first 65536 ops of each thread and round). Needs P11ISOLATE_MODULE and an initialized token. */
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <p11-kit/pkcs11.h>

static CK_FUNCTION_LIST_PTR F[2];
static CK_SLOT_ID slot[2];
static volatile int stop;
static int op;

#define MAX_SAMPLES (1 << 16) /* per thread and round: latencies kept for the p99 */

struct arg {
	int lib;
	long n;
	float *lat; /* µs of each op, the first MAX_SAMPLES */
	CK_RV rv;   /* the first failure: the round's figures do not count */
};

static double now(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec + t.tv_nsec / 1e9;
}

static void *run(void *p)
{
	struct arg *a = p;
	CK_FUNCTION_LIST_PTR f = F[a->lib];
	CK_SESSION_HANDLE s, ds;
	CK_MECHANISM m = { CKM_SHA256, NULL, 0 };
	CK_BYTE in[64] = { 0 }, out[32];
	CK_ULONG n;
	CK_INFO info;

	if ((a->rv = f->C_OpenSession(slot[a->lib], CKF_SERIAL_SESSION, NULL, NULL, &ds)) != CKR_OK)
		return NULL;
	while (!stop) {
		double t0 = now();
		CK_RV rv;
		switch (op) {
		case 0:
			if ((rv = f->C_OpenSession(slot[a->lib], CKF_SERIAL_SESSION, NULL, NULL, &s)) == CKR_OK)
				rv = f->C_CloseSession(s);
			break;
		case 1:
			n = sizeof out;
			if ((rv = f->C_DigestInit(ds, &m)) == CKR_OK)
				rv = f->C_Digest(ds, in, sizeof in, out, &n);
			break;
		default:
			rv = f->C_GetInfo(&info);
		}
		if (rv != CKR_OK) {
			a->rv = rv; /* a build that fails fast must not look fast */
			break;
		}
		if (a->n < MAX_SAMPLES)
			a->lat[a->n] = (float)((now() - t0) * 1e6);
		a->n++;
	}
	f->C_CloseSession(ds);
	return NULL;
}

static int cmp_float(const void *a, const void *b)
{
	float x = *(const float *)a, y = *(const float *)b;
	return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
	static const char *const names[] = { "open", "digest", "info" };
	int threads, rounds = argc > 5 ? atoi(argv[5]) : 6;
	double sum[2] = { 0, 0 };
	static float *lat[2][64];
	static long nlat[2];
	float *all[2] = { NULL, NULL };

	if (argc < 5 || (threads = atoi(argv[4])) < 1 || threads > 64 || rounds < 2) {
		fprintf(stderr, "usage: ab LIB_A LIB_B open|digest|info THREADS(1..64) [ROUNDS]\n");
		return 2;
	}
	for (op = 0; op < 3 && strcmp(argv[3], names[op]) != 0; op++)
		;
	if (op == 3) {
		fprintf(stderr, "ab: unknown op %s: open, digest or info\n", argv[3]);
		return 2;
	}
	for (int i = 0; i < 2; i++) {
		void *h = dlopen(argv[1 + i], RTLD_NOW | RTLD_LOCAL);
		CK_C_GetFunctionList get = h ? (CK_C_GetFunctionList)dlsym(h, "C_GetFunctionList") : NULL;
		CK_SLOT_ID list[16];
		CK_ULONG k = 16;
		CK_TOKEN_INFO ti;
		/* Threads call at once: the module must lock. */
		CK_C_INITIALIZE_ARGS ia = { .flags = CKF_OS_LOCKING_OK };
		CK_RV rv = get == NULL ? CKR_GENERAL_ERROR : get(&F[i]);
		if (rv == CKR_OK)
			rv = F[i]->C_Initialize(&ia);
		if (rv == CKR_OK)
			rv = F[i]->C_GetSlotList(CK_TRUE, list, &k);
		/* The first slot with an initialized token. */
		int found = 0;
		for (CK_ULONG j = 0; rv == CKR_OK && j < k && !found; j++)
			if (F[i]->C_GetTokenInfo(list[j], &ti) == CKR_OK && (ti.flags & CKF_TOKEN_INITIALIZED))
				slot[i] = list[j], found = 1;
		if (!found) {
			fprintf(stderr, "ab: cannot use %s (0x%lx, or no initialized token)\n", argv[1 + i], (unsigned long)rv);
			return 2;
		}
	}
	for (int r = 0; r < rounds; r++) {
		for (int l = 0; l < 2; l++) {
			pthread_t t[64];
			struct arg a[64];
			struct timespec second = { 1, 0 };
			long n = 0;
			stop = 0;
			for (int i = 0; i < threads; i++) {
				if (lat[l][i] == NULL)
					lat[l][i] = malloc(MAX_SAMPLES * sizeof(float));
				a[i] = (struct arg){ l, 0, lat[l][i], CKR_OK };
				pthread_create(&t[i], NULL, run, &a[i]);
			}
			double t0 = now();
			nanosleep(&second, NULL);
			stop = 1;
			for (int i = 0; i < threads; i++) {
				pthread_join(t[i], NULL);
				n += a[i].n;
			}
			for (int i = 0; i < threads; i++)
				if (a[i].rv != CKR_OK) {
					fprintf(stderr, "ab: %s failed with 0x%lx on %s: no figures\n", names[op],
						(unsigned long)a[i].rv, argv[1 + l]);
					return 1;
				}
			double ops = n / (now() - t0);
			if (r > 0) {
				sum[l] += ops;
				for (int i = 0; i < threads; i++) {
					long k = a[i].n < MAX_SAMPLES ? a[i].n : MAX_SAMPLES;
					all[l] = realloc(all[l], (size_t)(nlat[l] + k) * sizeof(float));
					memcpy(all[l] + nlat[l], lat[l][i], (size_t)k * sizeof(float));
					nlat[l] += k;
				}
			}
			printf("round %d %s: %.0f ops/s\n", r, l ? "B" : "A", ops);
		}
	}
	double p99[2];
	for (int l = 0; l < 2; l++) {
		qsort(all[l], (size_t)nlat[l], sizeof(float), cmp_float);
		p99[l] = nlat[l] ? all[l][(long)(0.99 * (double)(nlat[l] - 1))] : 0;
	}
	printf("%s, %d thread(s): A %.0f ops/s, B %.0f ops/s, B/A %.3f; p99 A %.0f µs, B %.0f µs, B/A %.2f (%d rounds)\n",
	       names[op], threads, sum[0] / (rounds - 1), sum[1] / (rounds - 1), sum[1] / sum[0], p99[0], p99[1],
	       p99[0] > 0 ? p99[1] / p99[0] : 0, rounds - 1);
	for (int i = 0; i < 2; i++)
		F[i]->C_Finalize(NULL);
	return 0;
}
