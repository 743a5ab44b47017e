/* sessions: what the proxy remembers of a session between calls, by the
 * application's session handle (PKCS#11 3.x):
 * - the mechanism of each message-based operation (C_MessageEncryptInit,
 *   ...): a message's parameter (C_EncryptMessage's pParameter) is laid
 *   out as that mechanism's per-message parameter, and only the proxy,
 *   which reads it from the application's memory, needs the layout;
 * - the output buffers of calls that returned CKR_PENDING on an
 *   asynchronous session, and those C_AsyncJoin gave: the vendor writes
 *   the result when the operation completes, and C_AsyncComplete must put
 *   it there and name that buffer in its CK_ASYNC_DATA.
 * Entries are made at C_OpenSession (with the slot, for
 * C_CloseAllSessions) and dropped when the session closes, at
 * C_Finalize, and in a forked child. */
#include "plane.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define MAX_PENDING 4 /* asynchronous operations at once in one session */

struct sess {
	uint64_t h; /* 0: empty */
	uint64_t slot;
	CK_MECHANISM_TYPE msg[4]; /* by operation: encrypt, decrypt, sign, verify */
	unsigned msg_set;         /* bit op: msg[op] is set */
	struct {
		int id; /* the function; 0: free */
		uintptr_t buf;
		uint64_t cap;
	} pend[MAX_PENDING];
};

static struct {
	pthread_mutex_t mu;
	struct sess *t;
	size_t cap, n; /* cap: a power of two, or 0 */
} sessions = { .mu = PTHREAD_MUTEX_INITIALIZER };

static size_t home(uint64_t h, size_t cap)
{
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdULL;
	h ^= h >> 33;
	return (size_t)h & (cap - 1);
}

/* find returns h's entry (sessions.mu held), NULL if none. */
static struct sess *find(uint64_t h)
{
	if (sessions.cap == 0 || h == 0)
		return NULL;
	for (size_t i = home(h, sessions.cap);; i = (i + 1) & (sessions.cap - 1)) {
		if (sessions.t[i].h == h)
			return &sessions.t[i];
		if (sessions.t[i].h == 0)
			return NULL;
	}
}

static void place(struct sess *t, size_t cap, const struct sess *e)
{
	size_t i = home(e->h, cap);

	while (t[i].h != 0)
		i = (i + 1) & (cap - 1);
	t[i] = *e;
}

/* add makes h's entry afresh (sessions.mu held); NULL when memory ran out:
 * the session then works as a 2.40 one, its message parameters crossing
 * as the vendor answers an operation it never saw started. */
static struct sess *add(uint64_t h)
{
	struct sess *e = find(h);

	if (e != NULL) {
		memset(e, 0, sizeof *e);
		e->h = h;
		return e;
	}
	if ((sessions.n + 1) * 2 > sessions.cap) {
		size_t cap = sessions.cap ? 2 * sessions.cap : 64;
		struct sess *t = calloc(cap, sizeof *t);
		if (t == NULL)
			return NULL;
		for (size_t i = 0; i < sessions.cap; i++)
			if (sessions.t[i].h != 0)
				place(t, cap, &sessions.t[i]);
		free(sessions.t);
		sessions.t = t;
		sessions.cap = cap;
	}
	struct sess fresh = { .h = h };
	place(sessions.t, sessions.cap, &fresh);
	sessions.n++;
	return find(h);
}

/* drop removes entry e, moving back the entries after it that would
 * otherwise no longer be found (linear probing without tombstones). */
static void drop(struct sess *e)
{
	size_t i = (size_t)(e - sessions.t), j = i, mask = sessions.cap - 1;

	memset(e, 0, sizeof *e);
	sessions.n--;
	for (;;) {
		j = (j + 1) & mask;
		if (sessions.t[j].h == 0)
			return;
		size_t k = home(sessions.t[j].h, sessions.cap);
		/* Entry j may move to i unless its home lies cyclically in (i, j]. */
		if ((i <= j) ? (i < k && k <= j) : (i < k || k <= j))
			continue;
		sessions.t[i] = sessions.t[j];
		memset(&sessions.t[j], 0, sizeof sessions.t[j]);
		i = j;
	}
}

void p11i_sessions_opened(uint64_t h, uint64_t slot)
{
	pthread_mutex_lock(&sessions.mu);
	struct sess *e = add(h);
	if (e != NULL)
		e->slot = slot;
	pthread_mutex_unlock(&sessions.mu);
}

void p11i_sessions_closed(uint64_t h)
{
	pthread_mutex_lock(&sessions.mu);
	struct sess *e = find(h);
	if (e != NULL)
		drop(e);
	pthread_mutex_unlock(&sessions.mu);
}

void p11i_sessions_closed_slot(uint64_t slot)
{
	pthread_mutex_lock(&sessions.mu);
	for (size_t i = 0; i < sessions.cap;) {
		if (sessions.t[i].h != 0 && sessions.t[i].slot == slot)
			drop(&sessions.t[i]); /* an entry may have moved into i: look again */
		else
			i++;
	}
	pthread_mutex_unlock(&sessions.mu);
}

static void forget_all(void)
{
	free(sessions.t);
	sessions.t = NULL;
	sessions.cap = sessions.n = 0;
}

/* In a forked child: a parent thread may have held the lock at the fork. */
void p11i_sessions_reset(void)
{
	pthread_mutex_init(&sessions.mu, NULL);
	forget_all();
}

void p11i_sessions_clear(void)
{
	pthread_mutex_lock(&sessions.mu);
	forget_all();
	pthread_mutex_unlock(&sessions.mu);
}

int p11i_sessions_msg(uint64_t h, int op, CK_MECHANISM_TYPE *mech)
{
	int ok = 0;

	pthread_mutex_lock(&sessions.mu);
	struct sess *e = find(h);
	if (e != NULL && (e->msg_set & 1u << op)) {
		*mech = e->msg[op];
		ok = 1;
	}
	pthread_mutex_unlock(&sessions.mu);
	return ok;
}

void p11i_sessions_set_msg(uint64_t h, int op, CK_MECHANISM_TYPE mech, int set)
{
	pthread_mutex_lock(&sessions.mu);
	struct sess *e = find(h);
	if (e != NULL) {
		e->msg[op] = mech;
		e->msg_set = set ? e->msg_set | 1u << op : e->msg_set & ~(1u << op);
	}
	pthread_mutex_unlock(&sessions.mu);
}

void p11i_sessions_cancel(uint64_t h, CK_FLAGS flags)
{
	static const CK_FLAGS op_flag[4] = { CKF_MESSAGE_ENCRYPT, CKF_MESSAGE_DECRYPT, CKF_MESSAGE_SIGN, CKF_MESSAGE_VERIFY };

	pthread_mutex_lock(&sessions.mu);
	struct sess *e = find(h);
	for (int op = 0; e != NULL && op < 4; op++)
		if (flags & op_flag[op])
			e->msg_set &= ~(1u << op);
	pthread_mutex_unlock(&sessions.mu);
}

void p11i_sessions_pend(uint64_t h, int id, uintptr_t buf, uint64_t cap)
{
	pthread_mutex_lock(&sessions.mu);
	struct sess *e = find(h);
	int at = -1;
	for (int i = 0; e != NULL && i < MAX_PENDING; i++) {
		if (e->pend[i].id == id || (at < 0 && e->pend[i].id == 0))
			at = i;
	}
	if (at >= 0) {
		e->pend[at].id = id;
		e->pend[at].buf = buf;
		e->pend[at].cap = cap;
	}
	pthread_mutex_unlock(&sessions.mu);
}

int p11i_sessions_pending(uint64_t h, int id, uintptr_t *buf, uint64_t *cap)
{
	int ok = 0;

	pthread_mutex_lock(&sessions.mu);
	struct sess *e = find(h);
	for (int i = 0; e != NULL && i < MAX_PENDING && !ok; i++) {
		if (e->pend[i].id == id) {
			*buf = e->pend[i].buf;
			*cap = e->pend[i].cap;
			ok = 1;
		}
	}
	pthread_mutex_unlock(&sessions.mu);
	return ok;
}

void p11i_sessions_unpend(uint64_t h, int id)
{
	pthread_mutex_lock(&sessions.mu);
	struct sess *e = find(h);
	for (int i = 0; e != NULL && i < MAX_PENDING; i++)
		if (e->pend[i].id == id)
			e->pend[i].id = 0;
	pthread_mutex_unlock(&sessions.mu);
}
