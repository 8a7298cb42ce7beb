/*
 * mem.h: allocation that never returns NULL.
 *
 * Out of memory is a failing environment, not an expected error: the process
 * logs and exits, and the master restarts it (STYLE.md). Callers therefore
 * never test the result for NULL.
 */
#ifndef YZ_MEM_H
#define YZ_MEM_H

#include <stddef.h>

void *yz_malloc(size_t size);
void *yz_calloc(size_t n, size_t size);
void *yz_realloc(void *p, size_t size);
char *yz_strdup(const char *s);
char *yz_strndup(const char *s, size_t n);
void *yz_memdup(const void *p, size_t n);
/* Wipe a secret; the compiler may not elide it. */
void yz_wipe(void *p, size_t n);

#endif
