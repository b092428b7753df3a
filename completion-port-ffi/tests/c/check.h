/* A tiny test harness for the C suite: CHECK(cond) and CHECK_ERR(call, expected last error). */
#ifndef CHECK_H
#define CHECK_H
#include <stdio.h>
#include <stdlib.h>
#include "iocp.h"

static int checks_run;

#define CHECK(cond)                                                                            \
    do {                                                                                       \
        checks_run++;                                                                          \
        if (!(cond)) {                                                                         \
            fprintf(stderr, "%s:%d: check failed: %s (last error %lu)\n", __FILE__, __LINE__, \
                    #cond, (unsigned long)GetLastError());                                     \
            exit(1);                                                                           \
        }                                                                                      \
    } while (0)

/* The call returns FALSE (0) and sets this last error. */
#define CHECK_FAILS_WITH(call, code)                                                           \
    do {                                                                                       \
        SetLastError(0);                                                                       \
        BOOL r_ = (call);                                                                      \
        DWORD e_ = GetLastError();                                                             \
        checks_run++;                                                                          \
        if (r_ != FALSE || e_ != (DWORD)(code)) {                                              \
            fprintf(stderr, "%s:%d: %s returned %d with error %lu, expected FALSE with %lu\n", \
                    __FILE__, __LINE__, #call, r_, (unsigned long)e_, (unsigned long)(code));  \
            exit(1);                                                                           \
        }                                                                                      \
    } while (0)

#define DONE(name)                                                                             \
    do {                                                                                       \
        printf("%s: ok, %d checks\n", name, checks_run);                                       \
        return 0;                                                                              \
    } while (0)

#endif
