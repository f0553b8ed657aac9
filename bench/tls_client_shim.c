/* LD_PRELOAD shim for the bench's TLS clients (wrk): full handshakes only,
 * one TLS 1.3 suite and key-exchange group, and a count of what was
 * negotiated. Built by bench/tls_material.py at run time (cc -shared) into the
 * run's temporary directory.
 *
 * Why: wrk reuses each connection slot's SSL object (SSL_shutdown +
 * SSL_clear, which keeps the session), so every reconnect offers the last
 * session and, against a server that issues tickets, is a resumption (PSK),
 * not a full handshake. This wraps SSL_connect: before a handshake starts it
 * drops the SSL's session, so the client never offers one, and it pins the
 * offered TLS 1.3 suites and groups so every server negotiates the same.
 * After each completed handshake it counts it, counts it as resumed if the
 * server resumed (must stay 0), and tallies "version suite group" strings.
 *
 * The counts are written at exit by the process that made TLS connections
 * (not by wrappers such as taskset that the shim is preloaded into too).
 *
 * Environment:
 *   BENCH_TLS_STATS       file to write the counts to at exit (JSON)
 *   BENCH_TLS_SUITES      TLS 1.3 suites to offer (SSL_set_ciphersuites)
 *   BENCH_TLS_GROUPS      groups to offer (SSL_set1_groups_list)
 *   BENCH_TLS_ALLOW_RESUME  "1": keep sessions (only to show what wrk does)
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <openssl/objects.h>
#include <openssl/ssl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_KINDS 8

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static unsigned long long started, handshakes, resumed, other_kinds;
static struct {
  char name[128];
  unsigned long long count;
} kinds[MAX_KINDS];
static int nkinds;

static void tally(SSL *s) {
  char name[128];
  const SSL_CIPHER *c = SSL_get_current_cipher(s);
  int nid = (int)SSL_get_negotiated_group(s);
  const char *group = nid > 0 ? OBJ_nid2sn(nid) : NULL;
  snprintf(name, sizeof name, "%s %s %s", SSL_get_version(s), c ? SSL_CIPHER_get_name(c) : "?",
           group ? group : "?");
  pthread_mutex_lock(&lock);
  ++handshakes;
  if (SSL_session_reused(s)) ++resumed;
  int i;
  for (i = 0; i < nkinds && strcmp(kinds[i].name, name) != 0; ++i) {
  }
  if (i < nkinds) {
    ++kinds[i].count;
  } else if (nkinds < MAX_KINDS) {
    snprintf(kinds[nkinds].name, sizeof kinds[nkinds].name, "%s", name);
    kinds[nkinds++].count = 1;
  } else {
    ++other_kinds;
  }
  pthread_mutex_unlock(&lock);
}

int SSL_connect(SSL *s) {
  static int (*real)(SSL *);
  if (!real) real = (int (*)(SSL *))dlsym(RTLD_NEXT, "SSL_connect");
  if (SSL_in_before(s)) { /* the first call for this handshake (also after SSL_clear) */
    __atomic_add_fetch(&started, 1, __ATOMIC_RELAXED);
    const char *allow = getenv("BENCH_TLS_ALLOW_RESUME");
    if (!allow || strcmp(allow, "1") != 0) SSL_set_session(s, NULL);
    const char *suites = getenv("BENCH_TLS_SUITES");
    if (suites && *suites) SSL_set_ciphersuites(s, suites);
    const char *groups = getenv("BENCH_TLS_GROUPS");
    if (groups && *groups) SSL_set1_groups_list(s, groups);
  }
  int r = real(s);
  if (r == 1) tally(s);
  return r;
}

__attribute__((destructor)) static void write_stats(void) {
  const char *path = getenv("BENCH_TLS_STATS");
  /* Only the process that made TLS connections writes: the shim is also
   * preloaded into wrappers (taskset, time) that exit after wrk did. */
  if (!path || !*path || __atomic_load_n(&started, __ATOMIC_RELAXED) == 0) return;
  FILE *f = fopen(path, "w");
  if (!f) return;
  pthread_mutex_lock(&lock);
  fprintf(f, "{\"started\": %llu, \"handshakes\": %llu, \"resumed\": %llu, \"other\": %llu, \"negotiated\": {",
          started, handshakes, resumed, other_kinds);
  for (int i = 0; i < nkinds; ++i) fprintf(f, "%s\"%s\": %llu", i ? ", " : "", kinds[i].name, kinds[i].count);
  fprintf(f, "}}\n");
  pthread_mutex_unlock(&lock);
  fclose(f);
}
