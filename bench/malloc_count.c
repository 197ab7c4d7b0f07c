/*
 * LD_PRELOAD shim for bench/load.py: counts calls into the C allocator (malloc,
 * calloc, realloc, and the aligned ones: posix_memalign, aligned_alloc, memalign).
 * The aligned ones matter for nginx, whose memory pools come from posix_memalign.
 *
 *   cc -shared -fPIC -O2 -o malloc_count.so bench/malloc_count.c -ldl
 *   MALLOC_COUNT_DIR=/tmp/x LD_PRELOAD=$PWD/malloc_count.so nginx ...
 *
 * Each process keeps its counters in a shared file mapping, $MALLOC_COUNT_DIR/<pid>
 * (four native-endian uint64: malloc, calloc, realloc, aligned), so the benchmark reads
 * them at any moment without the process's cooperation.  A signal-triggered dump
 * would not do: nginx installs its own handlers for USR1/USR2/HUP/... in the
 * master and in every worker, and USR2 on the master starts a binary upgrade;
 * a dump thread would not survive nginx's fork into workers either.
 * A forked child gets a fresh file of its own (pthread_atfork), so an nginx
 * worker is counted apart from its master.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

enum { C_MALLOC, C_CALLOC, C_REALLOC, C_ALIGNED, C_N };

static void *(*real_malloc)(size_t);
static void *(*real_calloc)(size_t, size_t);
static void *(*real_realloc)(void *, size_t);
static void (*real_free)(void *);
static int (*real_posix_memalign)(void **, size_t, size_t);
static void *(*real_aligned_alloc)(size_t, size_t);
static void *(*real_memalign)(size_t, size_t);

/* Counts land here until the mapping exists (allocations made by other
 * libraries' constructors, or when MALLOC_COUNT_DIR is unset). */
static uint64_t early[C_N];
static uint64_t *counts = early;

/* dlsym() may allocate (its error state) before real_calloc is known; those
 * few bytes come from here and are never handed to the real free(). */
static _Alignas(16) char bootstrap[8192];
static size_t bootstrap_used;
static int resolving;

static int in_bootstrap(const void *p) {
    return (const char *)p >= bootstrap && (const char *)p < bootstrap + sizeof bootstrap;
}

static void *bootstrap_alloc(size_t size) {
    size_t start = (bootstrap_used + 15) & ~(size_t)15;
    if (start + size > sizeof bootstrap)
        return NULL;
    bootstrap_used = start + size;
    return bootstrap + start; /* static storage: already zeroed, as calloc must be */
}

static void resolve(void) {
    if (real_malloc || resolving)
        return;
    resolving = 1;
    real_calloc = dlsym(RTLD_NEXT, "calloc");
    real_realloc = dlsym(RTLD_NEXT, "realloc");
    real_free = dlsym(RTLD_NEXT, "free");
    real_posix_memalign = dlsym(RTLD_NEXT, "posix_memalign");
    real_aligned_alloc = dlsym(RTLD_NEXT, "aligned_alloc");
    real_memalign = dlsym(RTLD_NEXT, "memalign");
    real_malloc = dlsym(RTLD_NEXT, "malloc"); /* last: it is the "resolved" flag */
    resolving = 0;
}

/* Read once in the constructor: nginx empties its workers' environment. */
static char dir[4000];

static void map_counters(void) {
    char path[4096];
    if (!dir[0] || snprintf(path, sizeof path, "%s/%ld", dir, (long)getpid()) >= (int)sizeof path)
        return;
    /* O_TRUNC: after exec (taskset -> python) the pid, and so the file, is the same. */
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return;
    void *shared = MAP_FAILED;
    if (ftruncate(fd, sizeof(uint64_t) * C_N) == 0)
        shared = mmap(NULL, sizeof(uint64_t) * C_N, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    close(fd);
    if (shared != MAP_FAILED)
        counts = shared;
}

static void after_fork_in_child(void) {
    /* The parent's mapping is shared with the child: the child needs its own. */
    counts = early;
    memset(early, 0, sizeof early);
    map_counters();
}

__attribute__((constructor)) static void init(void) {
    resolve();
    const char *env = getenv("MALLOC_COUNT_DIR");
    if (env && strlen(env) < sizeof dir)
        strcpy(dir, env);
    uint64_t before[C_N];
    memcpy(before, early, sizeof before);
    map_counters();
    if (counts != early)
        for (int i = 0; i < C_N; i++)
            counts[i] += before[i];
    pthread_atfork(NULL, NULL, after_fork_in_child);
}

static inline void count(int which) {
    /* Relaxed: only the total matters, and the reader samples it between runs. */
    __atomic_fetch_add(&counts[which], 1, __ATOMIC_RELAXED);
}

void *malloc(size_t size) {
    resolve();
    if (!real_malloc)
        return bootstrap_alloc(size);
    count(C_MALLOC);
    return real_malloc(size);
}

void *calloc(size_t n, size_t size) {
    resolve();
    if (!real_calloc) {
        if (size && n > SIZE_MAX / size)
            return NULL;
        return bootstrap_alloc(n * size);
    }
    count(C_CALLOC);
    return real_calloc(n, size);
}

void *realloc(void *ptr, size_t size) {
    resolve();
    if (!real_realloc || in_bootstrap(ptr)) {
        /* Moving a bootstrap block: its old size is unknown, but the buffer's
         * end bounds it, so copying up to there cannot read out of bounds. */
        void *fresh = real_malloc ? real_malloc(size) : bootstrap_alloc(size);
        if (fresh && ptr) {
            size_t room = (size_t)(bootstrap + sizeof bootstrap - (char *)ptr);
            memcpy(fresh, ptr, size < room ? size : room);
        }
        return fresh;
    }
    count(C_REALLOC);
    return real_realloc(ptr, size);
}

/* dlsym() never asks for aligned memory, so these need no bootstrap path. */
int posix_memalign(void **out, size_t alignment, size_t size) {
    resolve();
    count(C_ALIGNED);
    return real_posix_memalign(out, alignment, size);
}

void *aligned_alloc(size_t alignment, size_t size) {
    resolve();
    count(C_ALIGNED);
    return real_aligned_alloc(alignment, size);
}

void *memalign(size_t alignment, size_t size) {
    resolve();
    count(C_ALIGNED);
    return real_memalign(alignment, size);
}

void free(void *ptr) {
    if (!ptr || in_bootstrap(ptr))
        return;
    resolve();
    if (real_free)
        real_free(ptr);
}
