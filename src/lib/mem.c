/*
 * mem.c: allocation wrappers that end the process on out-of-memory.
 * They never return NULL; a size of zero still yields a unique pointer.
 */
#include "lib/mem.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Report and exit without allocating. */
static void mem_oom(size_t size)
{
	char msg[96];
	int n = snprintf(msg, sizeof msg, "fatal: out of memory (%zu bytes)\n", size);
	if (n > 0)
		(void)!write(2, msg, (size_t)n);
	_exit(70);
}

void *yz_malloc(size_t size)
{
	void *p = malloc(size ? size : 1);
	if (p == NULL)
		mem_oom(size);
	return p;
}

void *yz_calloc(size_t n, size_t size)
{
	void *p = calloc(n ? n : 1, size ? size : 1);
	if (p == NULL)
		mem_oom(n * size);
	return p;
}

void *yz_realloc(void *p, size_t size)
{
	void *q = realloc(p, size ? size : 1);
	if (q == NULL)
		mem_oom(size);
	return q;
}

char *yz_strdup(const char *s)
{
	return yz_strndup(s, strlen(s));
}

char *yz_strndup(const char *s, size_t n)
{
	char *p = yz_malloc(n + 1);
	memcpy(p, s, n);
	p[n] = '\0';
	return p;
}

void *yz_memdup(const void *src, size_t n)
{
	void *p = yz_malloc(n);
	if (n > 0)
		memcpy(p, src, n);
	return p;
}

void yz_wipe(void *p, size_t n)
{
	if (p != NULL && n > 0)
		explicit_bzero(p, n);
}
