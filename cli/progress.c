// Progress bar: "label [=====>     ]  42% 12/30  ETA 3s  extra", redrawn in place with \r.
#include "progress.h"

#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

double cli_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

void progress_start(progress *p, const char *label, int64_t total, bool quiet) {
    memset(p, 0, sizeof *p);
    p->label = label ? label : "";
    p->total = total > 0 ? total : 1;
    p->active = !quiet && isatty(STDERR_FILENO);
    p->t_start = cli_now();
}

void progress_update(progress *p, int64_t done, const char *extra) {
    if (!p->active) return;
    double now = cli_now();
    if (p->drawn && done < p->total && now - p->t_drawn < 0.1) return;
    p->t_drawn = now;
    p->drawn = true;

    if (done > p->total) done = p->total;
    if (done < 0) done = 0;
    enum { WIDTH = 30 };
    char bar[WIDTH + 1];
    int fill = (int)(WIDTH * done / p->total);
    for (int i = 0; i < WIDTH; i++) bar[i] = i < fill ? '=' : (i == fill ? '>' : ' ');
    bar[WIDTH] = 0;

    char eta[32] = "";
    double elapsed = now - p->t_start;
    if (done > 0 && done < p->total) {
        double left = elapsed * (double)(p->total - done) / (double)done;
        if (left >= 60) snprintf(eta, sizeof eta, " ETA %dm%02ds", (int)left / 60, (int)left % 60);
        else snprintf(eta, sizeof eta, " ETA %.0fs", left);
    }
    fprintf(stderr, "\r%s [%s] %3d%% %lld/%lld%s%s%s\x1b[K", p->label, bar,
            (int)(100 * done / p->total), (long long)done, (long long)p->total, eta,
            extra ? "  " : "", extra ? extra : "");
    fflush(stderr);
}

void progress_end(progress *p) {
    if (!p->active || !p->drawn) return;
    fputs("\r\x1b[K", stderr);
    fflush(stderr);
    p->drawn = false;
}
