/* check.h --- the harness the C unit tests share: CHECK, BYTES and the
   runner that prints the "N passed, N failed" line make test counts.  */

/* Copyright (C) 2026 The derl authors
   SPDX-License-Identifier: GPL-3.0-or-later */

#ifndef DERL_TEST_CHECK_H
#define DERL_TEST_CHECK_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

static int test_failed;  /* the running test has failed a CHECK */

static void
check_failed (const char *file, int line, const char *what)
{
  fprintf (stderr, "%s:%d: CHECK failed: %s\n", file, line, what);
  test_failed = 1;
}

/* An expression, not a block: the byte vector literals made by BYTES in
   COND must live on after it, as items read from them point into them.  */
#define CHECK(cond) \
  ((cond) ? (void) 0 : check_failed (__FILE__, __LINE__, #cond))

/* A byte vector literal and its length, as two arguments.  */
#define BYTES(...)                             \
  ((const uint8_t[]) { __VA_ARGS__ }),          \
    sizeof ((const uint8_t[]) { __VA_ARGS__ })

typedef struct
{
  const char *name;
  void (*fn) (void);
} test_case;

/* An entry of a test table: the function and its name.  */
#define TEST(f) { #f, f }

/* Run the N TESTS, each reported when it fails; print the totals.
   Returns the process's exit status.  */
static int
run_tests (const test_case *tests, size_t n)
{
  int passed = 0, failed = 0;
  for (size_t k = 0; k < n; k++)
    {
      test_failed = 0;
      tests[k].fn ();
      if (test_failed)
        {
          fprintf (stderr, "FAIL %s\n", tests[k].name);
          failed++;
        }
      else
        passed++;
    }
  printf ("%d passed, %d failed\n", passed, failed);
  return failed != 0;
}

#endif /* DERL_TEST_CHECK_H */
