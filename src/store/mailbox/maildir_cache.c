/*
 * maildir_cache.c: the per-process cache of Maildir folders known to exist,
 * each with an open directory fd on its new/, so that a delivery neither
 * stats nor mkdirs a Maildir it has seen before.
 *
 * Guarantees: at most the cache's bound of entries (each one fd) is kept;
 * when full, the least recently used entry that no batch holds is closed, and
 * when every entry is held the new one is handed out detached (closed at its
 * last release), so the cache never grows past its bound nor exhausts fds.
 * An entry that a batch still holds is never closed under it: forgetting
 * (a Maildir deleted or replaced by an administrator) only takes it out of
 * the table. Lookups make no system call; the batch revalidates an entry
 * once per batch (maildir_batch.c), which is what keeps the cache true.
 * Never: create a directory (maildir_create() does), follow a path that was
 * not built from validated parts, return an entry without its fd.
 */
#include "store/mailbox/maildir.h"
#include "store/mailbox/maildir_private.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/lru.h"
#include "lib/mem.h"

struct maildir_cache {
	struct maildir_cache_entry **slots; /* max pointers; NULL = free */
	size_t max;
	size_t count;
	unsigned long long tick;            /* LRU clock */
};

/* FNV-1a of a path, to compare hashes before strings. */
static unsigned path_hash(const char *s)
{
	return (unsigned)yz_hash_str(yz_hash_init(0), s);
}

/* A cache of at most max_entries folders (0 or above MAILDIR_CACHE_MAX:
 * MAILDIR_CACHE_MAX). */
struct maildir_cache *maildir_cache_new(size_t max_entries)
{
	struct maildir_cache *c = yz_calloc(1, sizeof *c);
	c->max = max_entries == 0 || max_entries > MAILDIR_CACHE_MAX ? MAILDIR_CACHE_MAX
								       : max_entries;
	c->slots = yz_calloc(c->max, sizeof *c->slots);
	return c;
}

/* Close and free an entry nobody holds any more. */
static void entry_free(struct maildir_cache_entry *e)
{
	if (e->new_fd >= 0)
		close(e->new_fd);
	free(e->path);
	free(e);
}

/* Take an entry out of the table; it is freed now if unheld, else at its
 * last release. */
static void cache_unlink_slot(struct maildir_cache *c, size_t i)
{
	struct maildir_cache_entry *e = c->slots[i];
	c->slots[i] = NULL;
	c->count--;
	e->cached = false;
	if (e->refs == 0)
		entry_free(e);
}

/* Forget every entry (held ones are freed by their last release). */
void maildir_cache_clear(struct maildir_cache *c)
{
	for (size_t i = 0; i < c->max; i++) {
		if (c->slots[i] != NULL)
			cache_unlink_slot(c, i);
	}
}

/* Free the cache; batches that hold entries must have been freed first. */
void maildir_cache_free(struct maildir_cache **cp)
{
	struct maildir_cache *c = *cp;
	if (c == NULL)
		return;
	maildir_cache_clear(c);
	free(c->slots);
	free(c);
	*cp = NULL;
}

/* Entries in the table. */
size_t maildir_cache_count(const struct maildir_cache *c)
{
	return c->count;
}

/* The entry of folder_dir, or NULL; no system call, no reference taken. */
struct maildir_cache_entry *maildir_cache_lookup(struct maildir_cache *c, const char *folder_dir)
{
	unsigned h = path_hash(folder_dir);
	for (size_t i = 0; i < c->max; i++) {
		struct maildir_cache_entry *e = c->slots[i];
		if (e != NULL && e->hash == h && strcmp(e->path, folder_dir) == 0) {
			e->used = ++c->tick;
			return e;
		}
	}
	return NULL;
}

/* A free slot, evicting the least recently used unheld entry; -1 if every
 * entry is held. */
static long cache_free_slot(struct maildir_cache *c)
{
	long victim = -1;
	for (size_t i = 0; i < c->max; i++) {
		struct maildir_cache_entry *e = c->slots[i];
		if (e == NULL)
			return (long)i;
		if (e->refs == 0 && (victim < 0 || e->used < c->slots[victim]->used))
			victim = (long)i;
	}
	if (victim >= 0)
		cache_unlink_slot(c, (size_t)victim);
	return victim;
}

/* Open <folder_dir>/new and enter it (replacing a stale entry of the same
 * path); the entry is returned held (release it). NULL with errno. */
struct maildir_cache_entry *maildir_cache_open(struct maildir_cache *c, const char *folder_dir)
{
	char path[PATH_MAX];
	if (maildir_pathf(path, sizeof path, "%s/new", folder_dir) < 0)
		return NULL;
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return NULL;
	struct stat st;
	if (fstat(fd, &st) < 0) {
		int saved = errno;
		close(fd);
		errno = saved;
		return NULL;
	}
	struct maildir_cache_entry *old = maildir_cache_lookup(c, folder_dir);
	if (old != NULL)
		maildir_cache_forget(c, old);
	struct maildir_cache_entry *e = yz_calloc(1, sizeof *e);
	e->path = yz_strdup(folder_dir);
	e->hash = path_hash(folder_dir);
	e->new_fd = fd;
	e->dev = st.st_dev;
	e->ino = st.st_ino;
	e->tmpfile = MAILDIR_TMPFILE_UNKNOWN;
	e->refs = 1;
	e->used = ++c->tick;
	long slot = cache_free_slot(c);
	if (slot >= 0) {
		c->slots[slot] = e;
		c->count++;
		e->cached = true;
	}
	return e;
}

/* Take a reference on an entry for the lifetime of a batch. */
void maildir_cache_hold(struct maildir_cache_entry *e)
{
	e->refs++;
}

/* Drop a reference; a detached or forgotten entry is freed at its last. */
void maildir_cache_release(struct maildir_cache_entry **ep)
{
	struct maildir_cache_entry *e = *ep;
	if (e == NULL)
		return;
	*ep = NULL;
	if (e->refs > 0)
		e->refs--;
	if (e->refs == 0 && !e->cached)
		entry_free(e);
}

/* The folder is gone or was replaced: take its entry out of the table. */
void maildir_cache_forget(struct maildir_cache *c, struct maildir_cache_entry *e)
{
	if (!e->cached)
		return;
	for (size_t i = 0; i < c->max; i++) {
		if (c->slots[i] == e) {
			cache_unlink_slot(c, i);
			return;
		}
	}
}
