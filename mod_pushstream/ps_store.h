/* ps_store.h - channels and messages in one shared-memory segment.
 *
 * Core: no httpd types (APR + pthreads + Linux futex).  The segment is
 * created once by the parent, inherited by every child and kept across
 * graceful restarts; all pointers inside it are offsets from its base.
 *
 * Locking: functions named *_locked must be called between ps_store_lock()
 * and ps_store_unlock().  The lock is a robust process-shared mutex: when
 * a child dies holding it, the next locker repairs the segment (rebuilds the
 * allocator and drops anything half-linked) before going on.
 *
 * Delivery: every published message (and every channel-deleted notice) gets
 * a global sequence number and an entry in a ring ("the log").  Each child
 * remembers the last sequence it read, reads the new entries and hands them
 * to its own subscribers; ps_store_notify() wakes the children that sleep
 * in ps_store_wait().
 */
#ifndef PS_STORE_H
#define PS_STORE_H

#include <apr.h>
#include <apr_pools.h>
#include <apr_errno.h>
#include "ps_msgview.h"
#include "ps_info.h"

typedef struct ps_store_t ps_store_t;       /* per-process handle */
typedef struct ps_channel_t ps_channel_t;   /* lives in the segment */

/* Errors beside APR_ENOMEM (segment full). */
#define PS_E_LIMIT     (APR_OS_START_USERERR + 1)   /* a configured limit hit */
#define PS_E_CORRUPT   (APR_OS_START_USERERR + 2)   /* segment not usable */

/* How long removed messages/channels stay readable ("trash"), seconds. */
#define PS_TRASH_GRACE 10

/* Limits of the server that performs an operation (0 = unlimited). */
typedef struct ps_limits_t {
    apr_uint64_t max_channels;
    apr_uint64_t max_wildcard_channels;
    apr_uint64_t max_subscribers_per_channel;
    apr_uint64_t max_stored_per_channel;
    apr_int64_t message_ttl;            /* seconds, > 0 */
    apr_int64_t channel_inactivity;     /* seconds */
} ps_limits_t;

/* Zone-wide figures (statistics). */
typedef struct ps_store_stats_t {
    apr_uint64_t channels;
    apr_uint64_t wildcard_channels;
    apr_uint64_t published_messages;
    apr_uint64_t stored_messages;
    apr_uint64_t messages_in_trash;
    apr_uint64_t channels_in_delete;
    apr_uint64_t channels_in_trash;
    apr_uint64_t subscribers;
    apr_int64_t created;                /* seconds since the epoch */
    apr_uint64_t size;                  /* segment bytes */
    apr_uint64_t free_bytes;            /* allocator bytes free */
    apr_uint64_t recoveries;            /* repairs after a dead lock owner */
    apr_uint64_t seq;                   /* last message sequence */
    apr_uint64_t auth_invalid_token;    /* PushStreamAuth 401s */
    apr_uint64_t auth_insufficient_scope;   /* PushStreamAuth 403s */
} ps_store_stats_t;

typedef struct ps_worker_info_t {
    apr_int32_t pid;
    apr_uint64_t subscribers;
    apr_int64_t started;
} ps_worker_info_t;

/* ---- segment life ------------------------------------------------------ */

/* Smallest usable segment. */
apr_size_t ps_store_min_size(void);

/* Lay out a fresh segment of size bytes at base.  nworkers = slots for
 * child processes (their pid, subscriber counts). */
apr_status_t ps_store_format(void *base, apr_size_t size, int nworkers,
                             apr_int64_t now);

/* 1 when base holds a segment laid out by this code for size bytes. */
int ps_store_is_formatted(const void *base, apr_size_t size);

/* A per-process handle on a formatted segment. */
ps_store_t *ps_store_attach(apr_pool_t *p, void *base);

/* ---- locking and wake-up ------------------------------------------------ */

/* Returns APR_SUCCESS, or PS_E_CORRUPT if the lock cannot be recovered.
 * *repaired (may be NULL) is set to 1 when this call repaired the segment
 * after a lock owner died. */
apr_status_t ps_store_lock(ps_store_t *st, int *repaired);
void ps_store_unlock(ps_store_t *st);

/* Wake every process waiting in ps_store_wait().  Call after unlock. */
void ps_store_notify(ps_store_t *st);

/* Current wake counter (read without the lock). */
apr_uint32_t ps_store_wake_counter(ps_store_t *st);

/* Sleep until the wake counter differs from seen or timeout (usec) passes. */
void ps_store_wait(ps_store_t *st, apr_uint32_t seen,
                   apr_interval_time_t timeout);

/* ---- workers (child processes) ------------------------------------------ */

/* Claim a worker slot for pid; -1 when the table is full.  A slot whose
 * previous owner is dead is reaped first. */
int ps_store_worker_claim_locked(ps_store_t *st, apr_int32_t pid,
                                 apr_int64_t now);
void ps_store_worker_release_locked(ps_store_t *st, int slot);

/* Remove what dead children left behind (their subscriptions).  alive(pid)
 * decides; returns the number of slots reaped. */
int ps_store_reap_dead_locked(ps_store_t *st, int (*alive)(apr_int32_t pid));

/* Fill up to max worker infos (live slots); returns the count. */
int ps_store_workers_locked(ps_store_t *st, ps_worker_info_t *out, int max);

/* ---- channels ----------------------------------------------------------- */

ps_channel_t *ps_store_find_locked(ps_store_t *st, const char *id,
                                   apr_size_t len);

/* Find or create; APR_ENOMEM (segment full) or PS_E_LIMIT (max channels). */
apr_status_t ps_store_get_or_create_locked(ps_store_t *st, const char *id,
                                           apr_size_t len, int wildcard,
                                           const ps_limits_t *lim,
                                           apr_int64_t now,
                                           ps_channel_t **out);

/* Create (or find) the events channel: never collected, receives JSON
 * events channel_created/destroyed, client_subscribed/unsubscribed, stored
 * with lim's ttl and max stored. */
apr_status_t ps_store_events_channel_locked(ps_store_t *st, const char *id,
                                            apr_size_t len,
                                            const ps_limits_t *lim,
                                            apr_int64_t now);
int ps_store_channel_is_events(const ps_channel_t *ch);

/* Id and figures of a channel (pointers valid while locked). */
void ps_store_channel_info_locked(ps_store_t *st, const ps_channel_t *ch,
                                  ps_chinfo_t *out);
apr_uint64_t ps_store_channel_serial(const ps_channel_t *ch);
apr_uint64_t ps_store_channel_stored(const ps_channel_t *ch);
apr_uint64_t ps_store_channel_subscribers(const ps_channel_t *ch);

/* Channel by position in creation order, for listings: calls cb for each
 * live channel (hash order is not creation order; this sorts). */
typedef void (ps_channel_cb)(void *baton, const ps_chinfo_t *info,
                             int wildcard);
void ps_store_foreach_channel_locked(ps_store_t *st, apr_pool_t *p,
                                     ps_channel_cb *cb, void *baton);

/* How many times a channel's subscriber count changed since the segment
 * was made (any thread, no lock): equal readings, no change between. */
apr_uint64_t ps_store_subs_changes(ps_store_t *st);

/* Publish: append to the log (and to the channel queue when store).
 * *seq_out = the message's sequence.  APR_ENOMEM when the segment is full. */
apr_status_t ps_store_publish_locked(ps_store_t *st, ps_channel_t *ch,
                                     const char *text, apr_size_t len,
                                     const char *event_id, apr_size_t eid_len,
                                     const char *event_type, apr_size_t et_len,
                                     int store, const ps_limits_t *lim,
                                     apr_int64_t now, apr_uint64_t *seq_out);

/* Several servers (Redis): store a message whose id, time and tag were
 * assigned elsewhere.  APR_EEXIST: id <= the channel's last id (a copy
 * already here); APR_INCOMPLETE: id > last + 1 and !force (a gap to fill
 * first); APR_ENOMEM.  expires (seconds) replaces now + ttl when > 0. */
apr_status_t ps_store_mirror_locked(ps_store_t *st, ps_channel_t *ch,
                                    const ps_msgview_t *v, int store,
                                    apr_int64_t expires, int force,
                                    const ps_limits_t *lim, apr_int64_t now);
void ps_store_set_last_id_locked(ps_channel_t *ch, apr_uint64_t id);
/* Publish one message to n channels, all or none: APR_ENOMEM (and no
 * channel has it) when the segment has no room for every copy. */
apr_status_t ps_store_publish_all_locked(
    ps_store_t *st, ps_channel_t **chs, int n, const char *text,
    apr_size_t len, const char *event_id, apr_size_t eid_len,
    const char *event_type, apr_size_t et_len, int store,
    const ps_limits_t *lim, apr_int64_t now);

/* Delete: the channel leaves the lookup at once; its subscribers get a
 * notice through the log carrying text.  APR_ENOMEM when no notice could be
 * allocated (the channel is deleted anyway). */
apr_status_t ps_store_delete_locked(ps_store_t *st, ps_channel_t *ch,
                                    const char *text, apr_size_t len,
                                    apr_int64_t now);

/* Subscriptions, counted per worker slot so a dead child's can be removed. */
apr_status_t ps_store_subscribe_locked(ps_store_t *st, ps_channel_t *ch,
                                       int slot, const ps_limits_t *lim,
                                       apr_int64_t now);
/* ch_off/serial as returned by ps_store_channel_ref(); safe after delete. */
void ps_store_unsubscribe_locked(ps_store_t *st, apr_uint64_t ch_off,
                                 apr_uint64_t serial, int slot,
                                 const ps_limits_t *lim, apr_int64_t now);
apr_uint64_t ps_store_channel_ref(ps_store_t *st, const ps_channel_t *ch);

/* One subscriber connection more/less for a worker slot (by_worker). */
void ps_store_worker_conn_locked(ps_store_t *st, int slot, int delta);

/* ---- reading messages --------------------------------------------------- */

/* A message as the log/replay callbacks see it: the view points into the
 * segment and is valid only during the callback. */
typedef struct ps_logmsg_t {
    ps_msgview_t view;
    apr_uint64_t seq;
    apr_uint64_t channel_serial;
    int deleted_notice;            /* channel deleted; view.text = text */
} ps_logmsg_t;

typedef void (ps_msg_cb)(void *baton, const ps_logmsg_t *m);

/* Call cb for every log entry with after < seq <= current; returns the
 * current sequence.  *lost (may be NULL) counts entries already gone. */
apr_uint64_t ps_store_read_log_locked(ps_store_t *st, apr_uint64_t after,
                                      ps_msg_cb *cb, void *baton,
                                      apr_uint64_t *lost);

apr_uint64_t ps_store_seq_locked(ps_store_t *st);

/* Replay of stored messages (protocol B5). */
typedef struct ps_replay_t {
    int backtrack;                 /* > 0: the last N messages */
    apr_int64_t since;             /* If-Modified-Since seconds, -1 = none */
    apr_int64_t tag;               /* If-None-Match tag, -1 = none */
    const char *last_event_id;     /* NULL = none */
    apr_size_t last_event_id_len;
} ps_replay_t;

/* 1 when q asks for anything (backtrack, time or event id). */
int ps_replay_wanted(const ps_replay_t *q);

/* Calls cb for the selected stored messages of ch, oldest first; returns
 * how many. */
int ps_store_replay_locked(ps_store_t *st, const ps_channel_t *ch,
                           const ps_replay_t *q, apr_int64_t now,
                           ps_msg_cb *cb, void *baton);

/* ---- maintenance -------------------------------------------------------- */

/* Expire messages, collect inactive channels, empty the trash.  Cheap when
 * nothing is due; any process may call it. */
void ps_store_cleanup_locked(ps_store_t *st, apr_int64_t now);

void ps_store_stats_locked(ps_store_t *st, ps_store_stats_t *out);

/* One token refusal more (PushStreamAuth): scope 0 = 401 invalid token,
 * 1 = 403 insufficient scope.  Atomic: no lock needed. */
void ps_store_count_auth(ps_store_t *st, int scope);

/* Full consistency check (tests, debugging): 0 when sound. */
int ps_store_check_locked(ps_store_t *st, const char **why);

/* Leak check (parent, at stop): 0 when every in-use block is reachable from
 * the roots and the counters match a recount; else *why says what, and
 * *leaked holds the number of unreachable blocks. */
int ps_store_leaks_locked(ps_store_t *st, apr_uint64_t *leaked,
                          const char **why);

#endif
