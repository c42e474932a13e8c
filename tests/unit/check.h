/* A minimal check macro for the unit tests: report and fail, keep going. */
#pragma once

#include <stdio.h>
#include <string.h>

static int check_failures;

#define CHECK(cond)                                                                      \
	do {                                                                             \
		if (!(cond)) {                                                           \
			fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
			check_failures++;                                                \
		}                                                                        \
	} while (0)

#define CHECK_STR(a, b)                                                                  \
	do {                                                                             \
		const char *a_ = (a), *b_ = (b);                                         \
		if (a_ == NULL || b_ == NULL || strcmp(a_, b_) != 0) {                   \
			fprintf(stderr, "%s:%d: \"%s\" != \"%s\"\n", __FILE__, __LINE__,       \
				a_ ? a_ : "(null)", b_ ? b_ : "(null)");                 \
			check_failures++;                                                \
		}                                                                        \
	} while (0)

#define CHECK_DONE() (check_failures == 0 ? 0 : 1)
