/*
 * dir_password.h: password hashes: new ones are argon2id PHC strings;
 * legacy ones (as Dovecot and crypt(3) write them) are verified so that
 * accounts can be migrated.
 *
 * Accepted stored forms: "$argon2id$...", "$argon2i$...", Dovecot-prefixed
 * "{ARGON2ID}...", "{ARGON2I}...", "{SHA512-CRYPT}$6$...",
 * "{SHA256-CRYPT}$5$...", "{BLF-CRYPT}$2y$/$2b$/$2a$...", "{CRYPT}<any of
 * the crypt forms>", and bare crypt(3) "$6$", "$5$", "$2b$"/"$2y$"/"$2a$",
 * "$y$" (yescrypt). Anything else (plain text, DES, MD5) is refused.
 *
 * Guarantees: the final digest comparison is constant-time; the cost
 * parameters of a stored hash are bounded (a planted hash cannot make a
 * verification take minutes or gigabytes); no copy of the password is left
 * in memory that this module allocated.
 */
#ifndef YZ_STORE_DIR_PASSWORD_H
#define YZ_STORE_DIR_PASSWORD_H

#include <stdint.h>

/* Longest password accepted (bytes). */
#define YZ_PASSWORD_MAX 1024
/* Longest stored hash string accepted (bytes). */
#define YZ_PASSWORD_HASH_MAX 512
/* argon2 bounds, for new and stored hashes. */
#define YZ_PASSWORD_ARGON2_T_MAX 64
#define YZ_PASSWORD_ARGON2_M_KIB_MIN 8
#define YZ_PASSWORD_ARGON2_M_KIB_MAX (4U * 1024 * 1024) /* 4 GiB */
#define YZ_PASSWORD_ARGON2_P_MAX 64
#define YZ_PASSWORD_ARGON2_SALT_LEN 16
#define YZ_PASSWORD_ARGON2_HASH_LEN 32
/* Cost bounds of stored crypt(3) hashes. */
#define YZ_PASSWORD_SHACRYPT_ROUNDS_MAX 1000000UL
#define YZ_PASSWORD_BCRYPT_COST_MAX 16

/* Hash with argon2id, salt from getrandom(2). 0, or -1 if a parameter is out
 * of bounds, the password is longer than YZ_PASSWORD_MAX, or no randomness.
 * *hash_r is heap memory. */
int yz_password_hash(const char *password, uint32_t t_cost,
		     uint32_t m_cost_kib, uint32_t parallelism, char **hash_r);

/* 1 match, 0 mismatch, -1 unknown or malformed stored hash (error_r). */
int yz_password_verify(const char *password, const char *stored_hash,
		       const char **error_r);

/* 0 if stored_hash is in an accepted form with bounded costs (what
 * yz_password_verify would try), -1 with error_r otherwise. Nothing is
 * hashed. */
int yz_password_hash_check(const char *stored_hash, const char **error_r);

#endif
