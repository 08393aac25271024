// A one-line progress bar on stderr, drawn only when stderr is a terminal (so logs and pipes
// stay clean). Redraws at most ~10 times a second.
#ifndef LLAMALITE_CLI_PROGRESS_H
#define LLAMALITE_CLI_PROGRESS_H

#include <stdbool.h>
#include <stdint.h>

#include "llamalite.h"

typedef struct {
    const char *label;
    int64_t total;
    bool active;       // stderr is a terminal and the bar is not disabled
    double t_start;    // seconds
    double t_drawn;    // last redraw
    bool drawn;
} progress;

// quiet: never draw (e.g. --log-disable).
void progress_start(progress *p, const char *label, int64_t total, bool quiet);
// done of total; extra is a short text after the bar (e.g. "PPL 12.34"), may be NULL.
void progress_update(progress *p, int64_t done, const char *extra);
// Erases the bar so the next output starts on a clean line.
void progress_end(progress *p);

// A "loading" bar while the model's weights are paged in, when show and stderr is a terminal
// (otherwise mp is left as it is and the weights load lazily).
void progress_watch_loading(ll_model_params *mp, bool show);

// Loads the model at path, with the loading bar when show_progress; NULL after printing
// "llamalite: [role: ]error".
ll_model *cli_load_model(const char *path, bool show_progress, const char *role);
// --no-mmap: the models cli_load_model loads from now on are read into memory, not mapped.
void cli_load_read_in(bool on);
// --no-repack: the models cli_load_model loads from now on keep the file's layout (zero-copy).
void cli_load_no_repack(bool on);

// Monotonic seconds, shared by the commands that time things.
double cli_now(void);

#endif
