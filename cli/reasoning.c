// Following <think>...</think> in a streamed reply (see reasoning.h).
#include "reasoning.h"

#include <stdlib.h>
#include <string.h>

static const char OPEN[] = "<think>", CLOSE[] = "</think>";

bool reasoning_open_at_end(const char *text) {
    const char *open = NULL, *close = NULL;
    for (const char *p = text; (p = strstr(p, OPEN)); p++) open = p;
    for (const char *p = text; (p = strstr(p, CLOSE)); p++) close = p;
    return open && (!close || close < open);
}

void reasoning_init(reasoning_filter *f, reasoning_mode mode, const char *prompt, reasoning_out_fn out, void *ud) {
    memset(f, 0, sizeof *f);
    f->mode = mode;
    f->out = out;
    f->ud = ud;
    f->thinking = prompt && reasoning_open_at_end(prompt);
}

static bool pass(reasoning_filter *f, const char *s, size_t n, bool thinking) {
    if (!n || (thinking && f->mode == REASONING_HIDE)) return true;
    return f->out(f->ud, s, n, thinking && f->mode == REASONING_DIM);
}

// Whether s[0..n) is a proper prefix of tag.
static bool tag_prefix(const char *s, size_t n, const char *tag) {
    return n < strlen(tag) && !strncmp(s, tag, n);
}

bool reasoning_feed(reasoning_filter *f, const char *s, size_t n) {
    if (f->mode == REASONING_SHOW) return f->out(f->ud, s, n, false);
    bool ok = true;
    for (size_t i = 0; i < n; i++) {
        f->held[f->n_held++] = s[i];
        const char *tag = f->thinking ? CLOSE : OPEN;
        if (f->n_held == strlen(tag) && !memcmp(f->held, tag, f->n_held)) {
            // the tag itself is part of the thinking
            ok = pass(f, f->held, f->n_held, true) && ok;
            f->thinking = !f->thinking;
            f->n_held = 0;
            continue;
        }
        if (tag_prefix(f->held, f->n_held, tag)) continue;
        // not a tag: pass on all but a suffix that may start one
        size_t keep = 0;
        for (size_t k = 1; k < f->n_held && !keep; k++)
            if (tag_prefix(f->held + k, f->n_held - k, tag)) keep = f->n_held - k;
        ok = pass(f, f->held, f->n_held - keep, f->thinking) && ok;
        memmove(f->held, f->held + f->n_held - keep, keep);
        f->n_held = keep;
    }
    return ok;
}

bool reasoning_flush(reasoning_filter *f) {
    bool ok = pass(f, f->held, f->n_held, f->thinking);
    f->n_held = 0;
    return ok;
}

char *reasoning_split(const char *reply, char **thinking) {
    *thinking = NULL;
    const char *close = strstr(reply, CLOSE);
    if (!close) return strdup(reply);
    const char *t = reply, *open = strstr(reply, OPEN);
    if (open && open < close) t = open + strlen(OPEN);
    const char *te = close;
    while (t < te && (*t == '\n' || *t == ' ')) t++;
    while (te > t && (te[-1] == '\n' || te[-1] == ' ')) te--;
    *thinking = malloc((size_t)(te - t) + 1);
    if (*thinking) {
        memcpy(*thinking, t, (size_t)(te - t));
        (*thinking)[te - t] = 0;
    }
    const char *a = close + strlen(CLOSE);
    while (*a == '\n' || *a == ' ') a++;
    return strdup(a);
}
