// The line editor's terminal layer: raw mode, drawing, resize, and reading from a pipe.
//
// Drawing follows linenoise's multi-line mode: remember how many rows the cursor is below the
// first prompt row, and on every change go back up there, clear to the end of the screen,
// write prompt and text again, and move the cursor to its place (le_layout says where).
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

#include "lineedit.h"

static struct termios g_orig;       // the mode the terminal was found in
static int g_tty_fd = -1;           // set once g_orig is valid
static volatile sig_atomic_t g_modified = 0;
static volatile sig_atomic_t g_winch = 0;
static bool g_handlers = false;

void le_term_restore(void) {
    if (g_tty_fd >= 0 && g_modified) {
        tcsetattr(g_tty_fd, TCSADRAIN, &g_orig); // keep type-ahead
        // Leave bracketed paste mode (harmless if it was never on).
        ssize_t r = write(g_tty_fd, "\x1b[?2004l", 8);
        (void)r;
        g_modified = 0;
    }
}

static void on_fatal(int sig) {
    le_term_restore();
    signal(sig, SIG_DFL);
    raise(sig);
}

static void on_winch(int sig) {
    (void)sig;
    g_winch = 1;
}

static void install_handlers(void) {
    if (g_handlers) return;
    g_handlers = true;
    atexit(le_term_restore);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sigemptyset(&sa.sa_mask);
    sa.sa_handler = on_fatal;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    sigaction(SIGQUIT, &sa, NULL);
    sa.sa_handler = on_winch; // no SA_RESTART: a resize interrupts read() so we redraw
    sigaction(SIGWINCH, &sa, NULL);
}

static int term_cols(int fd) {
    struct winsize ws;
    if (ioctl(fd, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0) return ws.ws_col;
    const char *c = getenv("COLUMNS");
    int n = c ? atoi(c) : 0;
    return n > 0 ? n : 80;
}

void le_term_init(le_term *t, int in_fd, int out_fd, bool color) {
    memset(t, 0, sizeof *t);
    t->in_fd = in_fd;
    t->out_fd = out_fd;
    const char *term = getenv("TERM");
    t->tty = isatty(in_fd) && isatty(out_fd) && !(term && (!strcmp(term, "dumb") || !strcmp(term, "cons25")));
    t->color = color && t->tty;
    if (t->tty && tcgetattr(in_fd, &g_orig) == 0) {
        g_tty_fd = in_fd;
        install_handlers();
    } else {
        t->tty = false;
    }
    t->cols = t->tty ? term_cols(out_fd) : 80;
}

static bool set_mode(le_term *t, bool raw) {
    struct termios m = g_orig;
    if (raw) {
        m.c_iflag &= ~(tcflag_t)(BRKINT | ICRNL | INPCK | ISTRIP | IXON);
        m.c_oflag &= ~(tcflag_t)OPOST;
        m.c_cflag |= CS8;
        m.c_lflag &= ~(tcflag_t)(ECHO | ICANON | IEXTEN | ISIG);
    } else { // quiet: typed text waits unseen, Ctrl-C still signals
        m.c_lflag &= ~(tcflag_t)(ECHO | ICANON);
    }
    m.c_cc[VMIN] = 1;
    m.c_cc[VTIME] = 0;
    if (tcsetattr(t->in_fd, TCSADRAIN, &m) < 0) return false;
    g_modified = 1;
    return true;
}

void le_term_quiet(le_term *t, bool on) {
    if (!t->tty) return;
    if (on) set_mode(t, false);
    else le_term_restore();
}

// ---- output buffer --------------------------------------------------------------------------
typedef struct {
    char *b;
    size_t n, cap;
} obuf;

static void ob_put(obuf *o, const char *s, size_t n) {
    if (o->n + n > o->cap) {
        size_t cap = o->cap ? o->cap * 2 : 1024;
        while (cap < o->n + n) cap *= 2;
        char *nb = realloc(o->b, cap);
        if (!nb) return;
        o->b = nb;
        o->cap = cap;
    }
    memcpy(o->b + o->n, s, n);
    o->n += n;
}

static void ob_str(obuf *o, const char *s) { ob_put(o, s, strlen(s)); }

static void ob_fmt(obuf *o, const char *fmt, int v) {
    char tmp[32];
    int n = snprintf(tmp, sizeof tmp, fmt, v);
    ob_put(o, tmp, (size_t)n);
}

static void write_all(int fd, const char *s, size_t n) {
    while (n) {
        ssize_t w = write(fd, s, n);
        if (w < 0) {
            if (errno == EINTR) continue;
            return;
        }
        s += w;
        n -= (size_t)w;
    }
}

// Text as drawn: '\n' starts a row, control characters show as ^X, tabs as spaces.
static void ob_text(obuf *o, const char *s, size_t len, int col, int cols) {
    size_t i = 0;
    while (i < len) {
        size_t n = le_grapheme_next(s, len, i);
        unsigned char c = (unsigned char)s[i];
        if (c == '\n') {
            ob_str(o, "\r\n");
            col = 0;
            i += n;
            continue;
        }
        if (col >= cols) col = 0;
        int w = le_cluster_width(s + i, n, col, cols);
        if (col + w > cols) col = 0;
        if (c == '\t') {
            for (int k = 0; k < w; k++) ob_put(o, " ", 1);
        } else if (c < 0x20 || c == 0x7f) {
            char ctl[2] = {'^', (char)(c == 0x7f ? '?' : c + 64)};
            ob_put(o, ctl, 2);
        } else {
            ob_put(o, s + i, n);
        }
        col += w;
        i += n;
    }
}

static void redraw(le_term *t, le_state *e, const char *prompt) {
    char tmp[256];
    const char *p = le_prompt(e, prompt, tmp, sizeof tmp);
    obuf o = {0};
    if (t->cursor_row > 0) ob_fmt(&o, "\x1b[%dA", t->cursor_row);
    ob_str(&o, "\r\x1b[J");
    if (t->color && !e->searching) ob_str(&o, "\x1b[1;32m");
    ob_str(&o, p);
    if (t->color) ob_str(&o, "\x1b[0m");

    le_pos at = {0, 0}, cur;
    // The prompt's own layout (colour sequences excluded).
    int pw = le_text_width(p);
    at.row = pw / t->cols;
    at.col = pw % t->cols;
    if (at.row && at.col == 0) { // a prompt exactly filling rows leaves the wrap pending
        at.row--;
        at.col = t->cols;
    }
    int start_col = at.col;
    bool pending = le_layout(e->buf, e->len, e->pos, t->cols, &at, &cur);
    if (t->color) ob_str(&o, "\x1b[32m");
    ob_text(&o, e->buf, e->len, start_col, t->cols);
    if (t->color) ob_str(&o, "\x1b[0m");
    if (pending) ob_str(&o, "\r\n");
    if (at.row > cur.row) ob_fmt(&o, "\x1b[%dA", at.row - cur.row);
    ob_str(&o, "\r");
    if (cur.col > 0) ob_fmt(&o, "\x1b[%dC", cur.col);
    write_all(t->out_fd, o.b, o.n);
    free(o.b);
    t->cursor_row = cur.row;
}

// Moves below the text (so output continues under it) and forgets the drawing.
static void finish(le_term *t, le_state *e, const char *prompt, const char *mark) {
    e->pos = e->len;
    if (e->searching) e->searching = false;
    redraw(t, e, prompt);
    if (mark) write_all(t->out_fd, mark, strlen(mark));
    write_all(t->out_fd, "\r\n", 2);
    t->cursor_row = 0;
}

// ---- reading --------------------------------------------------------------------------------

// Next input byte: -1 at end of input, -2 when a resize interrupted the wait.
static int next_byte(le_term *t) {
    if (t->pend_off < t->pend_len) return (unsigned char)t->pending[t->pend_off++];
    if (t->eof) return -1;
    for (;;) {
        ssize_t n = read(t->in_fd, t->pending, sizeof t->pending);
        if (n > 0) {
            t->pend_off = 1;
            t->pend_len = (size_t)n;
            return (unsigned char)t->pending[0];
        }
        if (n < 0 && errno == EINTR) {
            if (g_winch) return -2;
            continue;
        }
        t->eof = true;
        return -1;
    }
}

static bool pending_input(const le_term *t) { return t->pend_off < t->pend_len; }

// Not a terminal: lines as they come, with the same continuation rules.
static le_result read_pipe(le_term *t, le_state *e, char **out) {
    le_reset(e);
    for (;;) {
        int c = next_byte(t);
        if (c == -2) continue;
        if (c < 0) {
            if (e->len == 0) return LE_EOF;
            break;
        }
        if (c == '\n') {
            if (e->len && e->buf[e->len - 1] == '\r') e->buf[--e->len] = 0;
            int k = le_continues(e->buf, e->len);
            if (k == 0) break;
            if (k == 1) e->buf[--e->len] = 0;
        }
        char ch = (char)c;
        // Raw append (no key meanings in a pipe).
        e->pos = e->len;
        if (e->len + 2 > e->cap) {
            size_t cap = e->cap ? e->cap * 2 : 128;
            char *nb = realloc(e->buf, cap);
            if (!nb) return LE_EOF;
            e->buf = nb;
            e->cap = cap;
        }
        e->buf[e->len++] = ch;
        e->buf[e->len] = 0;
    }
    *out = le_message(e->buf, e->len);
    return *out ? LE_SUBMIT : LE_EOF;
}

le_result le_readline(le_term *t, le_state *e, const char *prompt, char **out) {
    *out = NULL;
    if (!t->tty) return read_pipe(t, e, out);
    if (!set_mode(t, true)) {
        t->tty = false;
        return read_pipe(t, e, out);
    }
    write_all(t->out_fd, "\x1b[?2004h", 8); // bracketed paste on
    le_reset(e);
    t->cols = term_cols(t->out_fd);
    t->cursor_row = 0;
    redraw(t, e, prompt);
    le_result r = LE_MORE;
    while (r == LE_MORE || r == LE_CLEAR_SCREEN || r == LE_LIST) {
        int c = next_byte(t);
        if (c == -2) {
            g_winch = 0;
            t->cols = term_cols(t->out_fd);
            // The terminal may have re-wrapped what it shows: recompute where the cursor is.
            le_pos at = {0, le_text_width(prompt)}, cur;
            if (at.col >= t->cols) {
                at.row = at.col / t->cols;
                at.col %= t->cols;
            }
            le_layout(e->buf, e->len, e->pos, t->cols, &at, &cur);
            t->cursor_row = cur.row;
            redraw(t, e, prompt);
            continue;
        }
        if (c < 0) {
            r = LE_EOF;
            break;
        }
        r = le_feed(e, (unsigned char)c);
        if (r == LE_CLEAR_SCREEN) {
            write_all(t->out_fd, "\x1b[H\x1b[2J", 7);
            t->cursor_row = 0;
        } else if (r == LE_LIST) {
            finish(t, e, prompt, NULL);
            obuf o = {0};
            for (int i = 0; i < e->n_list; i++) {
                ob_str(&o, e->list[i]);
                ob_str(&o, i + 1 < e->n_list ? "  " : "\r\n");
            }
            write_all(t->out_fd, o.b, o.n);
            free(o.b);
        }
        // Draw once per burst of input (a paste arrives as one read).
        if ((r == LE_MORE || r == LE_CLEAR_SCREEN || r == LE_LIST) && !pending_input(t)) redraw(t, e, prompt);
    }
    if (r == LE_SUBMIT) {
        finish(t, e, prompt, NULL);
        *out = le_message(e->buf, e->len);
        if (!*out) r = LE_EOF;
    } else if (r == LE_INTERRUPT) {
        finish(t, e, prompt, "^C");
    } else {
        finish(t, e, prompt, NULL);
    }
    write_all(t->out_fd, "\x1b[?2004l", 8);
    le_term_restore();
    return r;
}
