// A persistent pthreads pool: workers are created once and woken per operation.
#ifndef GGML_LITE_THREADPOOL_H
#define GGML_LITE_THREADPOOL_H

#ifdef __cplusplus
extern "C" {
#endif

typedef struct gl_threadpool gl_threadpool;

// A task runs on every thread of the pool (the caller is thread 0): ith in [0, nth).
typedef void (*gl_task_fn)(void *arg, int ith, int nth);

gl_threadpool *gl_threadpool_create(int n_threads); // NULL on failure; n_threads >= 1
void gl_threadpool_free(gl_threadpool *tp);
int gl_threadpool_n_threads(const gl_threadpool *tp);
// Runs fn on all threads and returns when every thread has finished. Not reentrant.
void gl_threadpool_run(gl_threadpool *tp, gl_task_fn fn, void *arg);

int gl_physical_cores(void); // best guess of physical cores (>= 1)

#ifdef __cplusplus
}
#endif
#endif
