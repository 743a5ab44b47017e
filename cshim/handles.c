/* handles: the application's session and object handles across host
 * restarts. The first host's handles pass unchanged, so a module behind the
 * proxy shows its own numbers. Every later host's handles are mapped to
 * fresh numbers above any the application has seen, so a handle of a dead
 * (or finalized) host can never name an object of the new one: it reaches
 * the vendor as CK_INVALID_HANDLE, which the vendor refuses with its own
 * code for that argument. Only the counter grows; the maps hold the current
 * host's handles and are dropped when a new host hands out its first. */
#include "plane.h"

#include <pthread.h>
#include <stdlib.h>

/* An open-addressing map of nonzero keys. */
struct hmap {
	uint64_t *keys, *vals;
	size_t cap, n; /* cap: a power of two, or 0 */
};

static struct {
	pthread_mutex_t mu;
	uint64_t gen;     /* generation of the host the maps belong to */
	uint64_t highest; /* highest handle the application has been given */
	struct hmap to_v, to_a;
} table = { .mu = PTHREAD_MUTEX_INITIALIZER };

static size_t slot(uint64_t k, size_t cap)
{
	k ^= k >> 33;
	k *= 0xff51afd7ed558ccdULL;
	k ^= k >> 33;
	return (size_t)k & (cap - 1);
}

static uint64_t hget(const struct hmap *m, uint64_t k)
{
	if (m->cap == 0)
		return 0;
	for (size_t i = slot(k, m->cap);; i = (i + 1) & (m->cap - 1)) {
		if (m->keys[i] == k)
			return m->vals[i];
		if (m->keys[i] == 0)
			return 0;
	}
}

static void hput_raw(struct hmap *m, uint64_t k, uint64_t v)
{
	size_t i = slot(k, m->cap);

	while (m->keys[i] != 0 && m->keys[i] != k)
		i = (i + 1) & (m->cap - 1);
	if (m->keys[i] == 0)
		m->n++;
	m->keys[i] = k;
	m->vals[i] = v;
}

/* hput stores k -> v; 0 when memory ran out (the handle then maps to
 * nothing, which the vendor refuses as invalid). */
static int hput(struct hmap *m, uint64_t k, uint64_t v)
{
	if (2 * (m->n + 1) > m->cap) {
		struct hmap bigger = { .cap = m->cap ? 2 * m->cap : 64 };
		bigger.keys = calloc(bigger.cap, sizeof(uint64_t));
		bigger.vals = calloc(bigger.cap, sizeof(uint64_t));
		if (bigger.keys == NULL || bigger.vals == NULL) {
			free(bigger.keys);
			free(bigger.vals);
			return 0;
		}
		for (size_t i = 0; i < m->cap; i++)
			if (m->keys[i] != 0)
				hput_raw(&bigger, m->keys[i], m->vals[i]);
		free(m->keys);
		free(m->vals);
		*m = bigger;
	}
	hput_raw(m, k, v);
	return 1;
}

static void hclear(struct hmap *m)
{
	free(m->keys);
	free(m->vals);
	*m = (struct hmap){ 0 };
}

uint64_t p11i_handle_to_vendor(uint64_t gen, uint64_t v)
{
	uint64_t r;

	if (v == 0 || gen == 0)
		return v;
	pthread_mutex_lock(&table.mu);
	r = gen == table.gen ? hget(&table.to_v, v) : 0; /* 0: a handle this host never issued */
	pthread_mutex_unlock(&table.mu);
	return r;
}

uint64_t p11i_handle_to_app(uint64_t gen, uint64_t v)
{
	uint64_t a;

	if (v == 0)
		return 0;
	pthread_mutex_lock(&table.mu);
	if (gen == 0) {
		if (v > table.highest)
			table.highest = v;
		pthread_mutex_unlock(&table.mu);
		return v;
	}
	if (gen != table.gen) {
		/* A new host: the previous host's handles are all dead. */
		table.gen = gen;
		hclear(&table.to_v);
		hclear(&table.to_a);
	}
	a = hget(&table.to_a, v);
	if (a == 0) {
		a = ++table.highest;
		if (!hput(&table.to_v, a, v) || !hput(&table.to_a, v, a))
			a = 0;
	}
	pthread_mutex_unlock(&table.mu);
	return a;
}

/* p11i_handles_reset makes the table usable in a forked child: a parent
 * thread may have held its lock at the fork, and none of the parent's
 * hosts is the child's, so the maps belong to no generation the child will
 * use (its first host's handles start above the parent's highest). */
void p11i_handles_reset(void)
{
	pthread_mutex_init(&table.mu, NULL);
	table.gen = UINT64_MAX;
}
