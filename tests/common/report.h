/* The test programs' reporting: one line per check ("ok   - what" or
 * "FAIL - what: got X want Y"), information lines ("# ..."), and a closing
 * count. Safe to call from several threads. */
#ifndef P11ISOLATE_TESTS_REPORT_H
#define P11ISOLATE_TESTS_REPORT_H

#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>

static atomic_int n_ok, n_fail;
static pthread_mutex_t out_mu = PTHREAD_MUTEX_INITIALIZER;

static inline void vsay(const char *prefix, const char *fmt, va_list ap)
{
	pthread_mutex_lock(&out_mu);
	fputs(prefix, stdout);
	vprintf(fmt, ap);
	fputc('\n', stdout);
	fflush(stdout);
	pthread_mutex_unlock(&out_mu);
}

/* note prints an information line. */
__attribute__((format(printf, 1, 2))) static inline void note(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsay("# ", fmt, ap);
	va_end(ap);
}

/* check records one check and returns cond. */
__attribute__((format(printf, 2, 3))) static inline int check(int cond, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	if (cond) {
		atomic_fetch_add(&n_ok, 1);
		vsay("ok   - ", fmt, ap);
	} else {
		atomic_fetch_add(&n_fail, 1);
		vsay("FAIL - ", fmt, ap);
	}
	va_end(ap);
	return cond;
}

/* finish prints the count and returns the exit status. */
static inline int finish(void)
{
	note("%d checks passed, %d failed", atomic_load(&n_ok), atomic_load(&n_fail));
	fflush(stdout);
	return atomic_load(&n_fail) ? 1 : 0;
}

#endif
