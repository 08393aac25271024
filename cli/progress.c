// Progress bar: "label [=====>     ]  42% 12/30  ETA 3s  extra", redrawn in place with \r,
// fitted to the terminal's width.
#include "progress.h"

#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

double cli_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

// Columns of the terminal on stderr; 80 when it cannot be asked.
static int terminal_columns(void) {
    struct winsize ws;
    if (ioctl(STDERR_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0) return ws.ws_col;
    return 80;
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
    char eta[32] = "";
    double elapsed = now - p->t_start;
    if (done > 0 && done < p->total) {
        double left = elapsed * (double)(p->total - done) / (double)done;
        if (left >= 60) snprintf(eta, sizeof eta, " ETA %dm%02ds", (int)left / 60, (int)left % 60);
        else snprintf(eta, sizeof eta, " ETA %.0fs", left);
    }
    char tail[160];
    snprintf(tail, sizeof tail, " %3d%% %lld/%lld%s%s%s", (int)(100 * done / p->total),
             (long long)done, (long long)p->total, eta, extra ? "  " : "", extra ? extra : "");

    // A line that wraps would scroll instead of redrawing: fit the bar, then the whole line, into
    // the terminal's width (the texts are ASCII, one column per byte).
    const int cols = terminal_columns();
    enum { MAX_BAR = 30, MIN_BAR = 5 };
    int bar_w = cols - 1 - (int)strlen(p->label) - (int)strlen(tail) - 3;
    if (bar_w > MAX_BAR) bar_w = MAX_BAR;
    char bar[MAX_BAR + 4] = "";
    if (bar_w >= MIN_BAR) {
        int fill = (int)(bar_w * done / p->total);
        bar[0] = ' ';
        bar[1] = '[';
        for (int i = 0; i < bar_w; i++) bar[2 + i] = i < fill ? '=' : (i == fill ? '>' : ' ');
        bar[2 + bar_w] = ']';
        bar[3 + bar_w] = 0;
    }
    char line[512];
    snprintf(line, sizeof line, "%s%s%s", p->label, bar, tail);
    if (cols > 1 && strlen(line) > (size_t)(cols - 1)) line[cols - 1] = 0;
    fprintf(stderr, "\r%s\x1b[K", line);
    fflush(stderr);
}

void progress_end(progress *p) {
    if (!p->active || !p->drawn) return;
    fputs("\r\x1b[K", stderr);
    fflush(stderr);
    p->drawn = false;
}

static void loading_update(void *ud, uint64_t done, uint64_t total) {
    progress *bar = (progress *)ud;
    const int64_t mib = 1 << 20, total_mib = (int64_t)((total + mib - 1) / mib);
    if (bar->t_start == 0) progress_start(bar, "loading", total_mib, false);
    progress_update(bar, done >= total ? total_mib : (int64_t)(done / mib), "MiB");
    if (done >= total) progress_end(bar);
}

void progress_watch_loading(ll_model_params *mp, bool show) {
    static progress bar; // one model loads at a time
    if (!show || !isatty(STDERR_FILENO)) return;
    memset(&bar, 0, sizeof bar);
    mp->progress = loading_update;
    mp->progress_ud = &bar;
}

static bool load_read_in, load_no_repack;

void cli_load_read_in(bool on) { load_read_in = on; }
void cli_load_no_repack(bool on) { load_no_repack = on; }

ll_model *cli_load_model(const char *path, bool show_progress, const char *role) {
    ll_model_params mp = ll_model_default_params();
    mp.no_mmap = load_read_in;
    mp.no_repack = load_no_repack;
    progress_watch_loading(&mp, show_progress);
    char err[512];
    ll_model *m = ll_model_load(path, &mp, err, sizeof err);
    if (!m) fprintf(stderr, "llamalite: %s%s%s\n", role ? role : "", role ? ": " : "", err);
    return m;
}
