/* A new password, read and hashed: for ftpsd --hash-password and ftpsd-user.
 * Helpers return 0 or -errno and print nothing but the prompts. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#define PASSWORD_MAX 1024

/* A new password into buf (size bytes, at most PASSWORD_MAX): when standard
 * input is a terminal and from_stdin is false, asked on it twice without
 * echo (prompts on standard error); else one line of standard input, its
 * newline cut. -ENODATA: no input; -EINVAL: empty or holding a NUL;
 * -EMSGSIZE: too long; -EKEYREJECTED: the two answers differ. On failure
 * buf is wiped. */
int password_read(bool from_stdin, char *buf, size_t size);

/* The crypt(3) prefix of a hash method's name ("yescrypt" -> "$y$"), or
 * NULL for a method this tool does not make. */
const char *password_method_prefix(const char *name);

/* The names password_method_prefix knows, ", " between them. */
const char *password_method_names(void);

/* A crypt(5) hash of password, with a fresh salt and the default cost of the
 * method whose prefix is given ("$y$": yescrypt): 0, or -errno (-EINVAL for
 * a method libcrypt does not support). */
int password_hash(const char *password, const char *prefix, char *out, size_t size);

/* What a password_read() error means, for a message. */
const char *password_error(int r);
