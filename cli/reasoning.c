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
    if (n && thinking && f->harmony) f->last_thought = s[n - 1];
    if (!n || (thinking && f->mode == REASONING_HIDE)) return true;
    return f->out(f->ud, s, n, thinking && f->mode == REASONING_DIM);
}

// Whether s[0..n) is a proper prefix of tag.
static bool tag_prefix(const char *s, size_t n, const char *tag) {
    return n < strlen(tag) && !strncmp(s, tag, n);
}

// ---- harmony (gpt-oss) --------------------------------------------------------------------

static const char H_MESSAGE[] = "<|message|>", H_CHANNEL[] = "<|channel|>";

void reasoning_set_harmony(reasoning_filter *f) {
    f->harmony = true;
    f->in_markup = true;
    f->thinking = false;
    f->n_markup = f->n_held = 0;
}

static bool ends_with(const char *s, size_t n, const char *tag) {
    size_t k = strlen(tag);
    return n >= k && !memcmp(s + n - k, tag, k);
}

// Between messages: collects the markup up to <|message|> and picks the channel from it. Text
// that is not markup (a model that writes no channels) is the answer after all.
static bool harmony_markup_byte(reasoning_filter *f, char c) {
    const bool not_tag = (f->n_markup == 0 && c != '<') || (f->n_markup == 1 && c != '|');
    if (not_tag || f->n_markup + 1 >= sizeof f->markup) { // no markup here (or too long for it): text
        bool ok = pass(f, f->markup, f->n_markup, false);
        f->n_markup = 0;
        f->in_markup = f->thinking = false;
        return pass(f, &c, 1, false) && ok;
    }
    f->markup[f->n_markup++] = c;
    f->markup[f->n_markup] = 0;
    if (!ends_with(f->markup, f->n_markup, H_MESSAGE)) return true;
    const char *ch = strstr(f->markup, H_CHANNEL);
    f->thinking = !(ch && !strncmp(ch + strlen(H_CHANNEL), "final", 5));
    f->in_markup = false;
    f->n_markup = 0;
    return true;
}

static bool is_tag(const char *s, size_t n, const char *tag) { return n == strlen(tag) && !memcmp(s, tag, n); }

// A tag "<|...|>" inside a message ends it; <|start|> and <|channel|> already begin the markup
// of the next one.
static bool harmony_tag(reasoning_filter *f, const char *tag, size_t n) {
    // Shown thinking ends on a line of its own: the tags that would separate it are hidden.
    bool ok = f->last_thought == 0 || f->last_thought == '\n' || pass(f, "\n", 1, true);
    f->last_thought = 0;
    f->in_markup = true;
    f->n_markup = 0;
    if (is_tag(tag, n, "<|start|>") || is_tag(tag, n, H_CHANNEL))
        for (size_t k = 0; k < n; k++) ok = harmony_markup_byte(f, tag[k]) && ok;
    return ok;
}

// Inside a message: text passes on (thinking or answer) until a tag ends it. held[] keeps a
// possible tag ("<|" ... "|>") until it is one or cannot be.
static bool harmony_feed(reasoning_filter *f, const char *s, size_t n) {
    bool ok = true;
    for (size_t i = 0; i < n; i++) {
        const char c = s[i];
        if (f->in_markup) {
            ok = harmony_markup_byte(f, c) && ok;
        } else if (f->n_held == 0 && c != '<') { // a run of text
            size_t j = i + 1;
            while (j < n && s[j] != '<') j++;
            ok = pass(f, s + i, j - i, f->thinking) && ok;
            i = j - 1;
        } else if (f->n_held == 1 && c != '|') { // "<" then not "|": text
            ok = pass(f, f->held, 1, f->thinking) && ok;
            f->n_held = 0;
            i--; // c again, as the start of whatever it is
        } else {
            if (c == '<' && f->n_held > 0) { // a new tag may start here: what was held is text
                ok = pass(f, f->held, f->n_held, f->thinking) && ok;
                f->n_held = 0;
            }
            f->held[f->n_held++] = c;
            if (f->n_held >= 4 && ends_with(f->held, f->n_held, "|>")) {
                ok = harmony_tag(f, f->held, f->n_held) && ok;
                f->n_held = 0;
            } else if (f->n_held == sizeof f->held) { // too long for a tag: text
                ok = pass(f, f->held, f->n_held, f->thinking) && ok;
                f->n_held = 0;
            }
        }
    }
    return ok;
}

bool reasoning_feed(reasoning_filter *f, const char *s, size_t n) {
    if (f->harmony) return harmony_feed(f, s, n);
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
    if (f->harmony && f->in_markup && f->n_markup < 2) // a lone "<" at the end: text
        ok = pass(f, f->markup, f->n_markup, false) && ok;
    f->n_markup = 0;
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

// The harmony split streams the reply through the filter into two buffers.
typedef struct {
    char *text[2]; // answer, thinking
    size_t n[2];
    bool oom;
} split_sink;

static bool split_out(void *ud, const char *s, size_t n, bool thinking) {
    split_sink *k = ud;
    char *p = realloc(k->text[thinking], k->n[thinking] + n + 2);
    if (!p) {
        k->oom = true;
        return false;
    }
    k->text[thinking] = p;
    memcpy(p + k->n[thinking], s, n);
    k->n[thinking] += n;
    p[k->n[thinking]] = 0;
    return true;
}

char *reasoning_split_harmony(const char *reply, char **thinking) {
    split_sink k = {{NULL, NULL}, {0, 0}, false};
    reasoning_filter f;
    reasoning_init(&f, REASONING_DIM, NULL, split_out, &k); // (DIM: pieces come marked as thinking)
    reasoning_set_harmony(&f);
    reasoning_feed(&f, reply, strlen(reply));
    reasoning_flush(&f);
    *thinking = k.text[1];
    while (k.n[1] && k.text[1][k.n[1] - 1] == '\n') k.text[1][--k.n[1]] = 0; // the display's line end
    if (k.oom) {
        free(k.text[0]);
        free(k.text[1]);
        *thinking = NULL;
        return NULL;
    }
    return k.text[0] ? k.text[0] : strdup("");
}
