// The line editor's state machine and layout: no I/O here (see lineedit.h).
#include "lineedit.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#define CTRL(c) ((c) & 0x1f)

// ---- UTF-8 and graphemes --------------------------------------------------------------------

// Decodes one code point at s[i]; returns its length, or -1 (with *cp = U+FFFD) if invalid.
static int decode(const char *s, size_t len, size_t i, utf8proc_int32_t *cp) {
    utf8proc_ssize_t n = utf8proc_iterate((const utf8proc_uint8_t *)s + i, (utf8proc_ssize_t)(len - i), cp);
    if (n <= 0) {
        *cp = 0xFFFD;
        return -1;
    }
    return (int)n;
}

size_t le_grapheme_next(const char *s, size_t len, size_t i) {
    if (i >= len) return 0;
    utf8proc_int32_t prev, cp;
    int n = decode(s, len, i, &prev);
    if (n < 0) return 1;
    size_t j = i + (size_t)n;
    utf8proc_int32_t state = 0;
    while (j < len) {
        int m = decode(s, len, j, &cp);
        if (m < 0 || utf8proc_grapheme_break_stateful(prev, cp, &state)) break;
        prev = cp;
        j += (size_t)m;
    }
    return j - i;
}

size_t le_grapheme_prev(const char *s, size_t len, size_t i) {
    if (i == 0) return 0;
    // A line break always ends a cluster, so scanning from the start of i's line is enough.
    size_t start = i;
    while (start > 0 && s[start - 1] != '\n') start--;
    if (start == i) return i - 1; // i is right after a '\n'
    size_t at = start;
    for (;;) {
        size_t n = le_grapheme_next(s, len, at);
        if (n == 0 || at + n >= i) return at;
        at += n;
    }
}

int le_cluster_width(const char *s, size_t n, int col, int cols) {
    utf8proc_int32_t cp;
    if (decode(s, n, 0, &cp) < 0) return 1; // shown as U+FFFD
    if (cp == '\t') {
        int w = 4 - col % 4;
        return col + w > cols ? cols - col : w;
    }
    if (cp < 0x20 || cp == 0x7f) return 2; // ^X
    int w = utf8proc_charwidth(cp);
    return w < 0 ? 1 : w;
}

int le_text_width(const char *s) {
    size_t len = strlen(s), i = 0;
    int w = 0;
    while (i < len) {
        if (s[i] == '\x1b' && i + 1 < len && s[i + 1] == '[') { // CSI ... final byte
            i += 2;
            while (i < len && !((unsigned char)s[i] >= 0x40 && (unsigned char)s[i] <= 0x7e)) i++;
            i++;
            continue;
        }
        size_t n = le_grapheme_next(s, len, i);
        w += le_cluster_width(s + i, n, w, 1 << 20);
        i += n;
    }
    return w;
}

bool le_layout(const char *s, size_t len, size_t pos, int cols, le_pos *at, le_pos *cursor) {
    if (cols < 1) cols = 1;
    int row = at->row, col = at->col;
    bool cursor_set = false;
    size_t i = 0;
    while (i < len) {
        size_t n = le_grapheme_next(s, len, i);
        int w = 0;
        if (s[i] != '\n') {
            if (col >= cols) { // the pending wrap happens when the next character comes
                row++;
                col = 0;
            }
            w = le_cluster_width(s + i, n, col, cols);
            if (col + w > cols) { // a wide character does not fit: the terminal wraps first
                row++;
                col = 0;
            }
        }
        if (i >= pos && !cursor_set) { // the cursor sits on this cluster
            cursor->row = col >= cols ? row + 1 : row;
            cursor->col = col >= cols ? 0 : col;
            cursor_set = true;
        }
        if (s[i] == '\n') {
            row++;
            col = 0;
        } else {
            col += w;
        }
        i += n;
    }
    bool pending = col >= cols;
    if (pending) {
        row++;
        col = 0;
    }
    if (!cursor_set) {
        cursor->row = row;
        cursor->col = col;
    }
    at->row = row;
    at->col = col;
    return pending;
}

// ---- buffer editing -------------------------------------------------------------------------

static bool reserve(le_state *e, size_t extra) {
    if (e->len + extra + 1 <= e->cap) return true;
    size_t cap = e->cap ? e->cap : 128;
    while (cap < e->len + extra + 1) cap *= 2;
    char *nb = realloc(e->buf, cap);
    if (!nb) return false;
    e->buf = nb;
    e->cap = cap;
    return true;
}

static void insert(le_state *e, const char *s, size_t n) {
    if (!n || !reserve(e, n)) return;
    memmove(e->buf + e->pos + n, e->buf + e->pos, e->len - e->pos);
    memcpy(e->buf + e->pos, s, n);
    e->len += n;
    e->pos += n;
    e->buf[e->len] = 0;
}

// Removes [from, to); saves it for Ctrl-Y when kill is set.
static void erase(le_state *e, size_t from, size_t to, bool kill) {
    if (from >= to) return;
    if (kill) {
        char *k = malloc(to - from + 1);
        if (k) {
            memcpy(k, e->buf + from, to - from);
            k[to - from] = 0;
            free(e->kill);
            e->kill = k;
            e->kill_len = to - from;
        }
    }
    memmove(e->buf + from, e->buf + to, e->len - to);
    e->len -= to - from;
    e->buf[e->len] = 0;
    if (e->pos >= to) e->pos -= to - from;
    else if (e->pos > from) e->pos = from;
}

bool le_set_text(le_state *e, const char *s, size_t n) {
    e->len = e->pos = 0;
    if (!reserve(e, n)) {
        if (e->buf) e->buf[0] = 0;
        return false;
    }
    memcpy(e->buf, s, n);
    e->len = e->pos = n;
    e->buf[n] = 0;
    return true;
}

static size_t line_start(const le_state *e, size_t i) {
    while (i > 0 && e->buf[i - 1] != '\n') i--;
    return i;
}

static size_t line_end(const le_state *e, size_t i) {
    while (i < e->len && e->buf[i] != '\n') i++;
    return i;
}

static bool is_space_at(const le_state *e, size_t i) {
    return e->buf[i] == ' ' || e->buf[i] == '\t' || e->buf[i] == '\n';
}

// Letters, digits and marks make words (for Ctrl-Left/Right, Alt-B/F/D).
static bool is_word_at(const le_state *e, size_t i) {
    utf8proc_int32_t cp;
    if (decode(e->buf, e->len, i, &cp) < 0) return false;
    utf8proc_category_t c = utf8proc_category(cp);
    return (c >= UTF8PROC_CATEGORY_LU && c <= UTF8PROC_CATEGORY_ME) ||
           (c >= UTF8PROC_CATEGORY_ND && c <= UTF8PROC_CATEGORY_NO) || cp == '_';
}

static size_t word_left(const le_state *e, size_t i) {
    while (i > 0) {
        size_t p = le_grapheme_prev(e->buf, e->len, i);
        if (is_word_at(e, p)) break;
        i = p;
    }
    while (i > 0) {
        size_t p = le_grapheme_prev(e->buf, e->len, i);
        if (!is_word_at(e, p)) break;
        i = p;
    }
    return i;
}

static size_t word_right(const le_state *e, size_t i) {
    while (i < e->len && !is_word_at(e, i)) i += le_grapheme_next(e->buf, e->len, i);
    while (i < e->len && is_word_at(e, i)) i += le_grapheme_next(e->buf, e->len, i);
    return i;
}

// Ctrl-W: back over spaces, then back to the previous space (like a shell).
static size_t space_word_left(const le_state *e, size_t i) {
    while (i > 0 && is_space_at(e, i - 1)) i--;
    while (i > 0 && !is_space_at(e, i - 1)) i--;
    return i;
}

// ---- state ----------------------------------------------------------------------------------

void le_init(le_state *e, le_history *hist) {
    memset(e, 0, sizeof *e);
    e->hist = hist;
    e->search_idx = -1;
    reserve(e, 0);
    if (e->buf) e->buf[0] = 0;
}

void le_free(le_state *e) {
    free(e->buf);
    free(e->draft);
    free(e->search_saved);
    free(e->kill);
    memset(e, 0, sizeof *e);
}

void le_reset(le_state *e) {
    e->len = e->pos = 0;
    if (e->buf) e->buf[0] = 0;
    e->esc = 0;
    e->seq_len = 0;
    e->u8_len = e->u8_need = 0;
    e->paste = e->paste_cr = false;
    e->hist_idx = 0;
    free(e->draft);
    e->draft = NULL;
    e->searching = false;
    free(e->search_saved);
    e->search_saved = NULL;
    e->last_tab = false;
    e->n_list = 0;
}

void le_set_completions(le_state *e, const char *const *words, int n) {
    e->words = words;
    e->n_words = n;
}

// ---- history browsing -----------------------------------------------------------------------

static void history_go(le_state *e, int dir) {
    if (!e->hist || e->hist->n == 0) return;
    int idx = e->hist_idx + dir;
    if (idx < 0 || idx > e->hist->n) return;
    if (e->hist_idx == 0) { // leaving the line being typed: keep it
        free(e->draft);
        e->draft = strdup(e->buf);
    }
    e->hist_idx = idx;
    const char *s = idx == 0 ? (e->draft ? e->draft : "") : e->hist->items[e->hist->n - idx];
    le_set_text(e, s, strlen(s));
}

// ---- reverse search -------------------------------------------------------------------------

// Finds the newest entry at index <= from containing the query; shows it with the cursor on
// the match.
static void search_from(le_state *e, int from) {
    e->search_failed = false;
    if (e->qlen == 0) { // nothing to look for: back to the line as it was
        e->search_idx = e->hist ? e->hist->n : -1;
        if (e->search_saved) le_set_text(e, e->search_saved, strlen(e->search_saved));
        e->pos = e->search_saved_pos;
        return;
    }
    e->search_failed = true;
    if (!e->hist) return;
    for (int i = from; i >= 0; i--) {
        const char *hit = strstr(e->hist->items[i], e->query);
        if (hit) {
            e->search_idx = i;
            e->search_failed = false;
            le_set_text(e, e->hist->items[i], strlen(e->hist->items[i]));
            e->pos = (size_t)(hit - e->hist->items[i]);
            return;
        }
    }
}

static void search_start(le_state *e) {
    e->u8_need = e->u8_len = 0;
    e->searching = true;
    e->search_failed = false;
    e->qlen = 0;
    e->query[0] = 0;
    e->search_idx = e->hist ? e->hist->n : -1; // nothing matched yet
    free(e->search_saved);
    e->search_saved = strdup(e->buf);
    e->search_saved_pos = e->pos;
}

static void search_end(le_state *e, bool restore) {
    e->u8_need = e->u8_len = 0;
    e->searching = false;
    if (restore && e->search_saved) {
        le_set_text(e, e->search_saved, strlen(e->search_saved));
        e->pos = e->search_saved_pos;
    }
    free(e->search_saved);
    e->search_saved = NULL;
    e->hist_idx = 0;
}

// Keys while searching: printable text extends the query, Ctrl-R finds an older match,
// Backspace shortens it, Ctrl-G cancels; any other key accepts the match and then acts.
// Returns true when the key was used up.
static bool search_key(le_state *e, unsigned char c) {
    int n_hist = e->hist ? e->hist->n : 0;
    if (c == CTRL('R')) {
        if (e->qlen && e->search_idx > 0) search_from(e, e->search_idx - 1);
        return true;
    }
    if (c == CTRL('G')) {
        search_end(e, true);
        return true;
    }
    if (c == 127 || c == CTRL('H')) {
        if (e->qlen) {
            e->qlen = le_grapheme_prev(e->query, e->qlen, e->qlen);
            e->query[e->qlen] = 0;
            search_from(e, n_hist - 1);
        }
        return true;
    }
    if (c < 0x20 || c == 0x7f) {
        search_end(e, false); // accept the match; the key then acts on it
        return false;
    }
    // The query grows by whole, valid UTF-8 characters (collected in e->u8).
    unsigned char ch[4];
    int n = 0;
    if (e->u8_need && (c & 0xC0) == 0x80) {
        e->u8[e->u8_len++] = c;
        if (e->u8_len < e->u8_need) return true;
        utf8proc_int32_t cp;
        n = decode((const char *)e->u8, (size_t)e->u8_len, 0, &cp) == e->u8_len ? e->u8_len : 0;
        memcpy(ch, e->u8, 4);
        e->u8_need = e->u8_len = 0;
    } else {
        e->u8_need = e->u8_len = 0; // a truncated character is dropped
        if (c < 0x80) {
            ch[0] = c;
            n = 1;
        } else if (c >= 0xC2 && c <= 0xF4) {
            e->u8[0] = c;
            e->u8_len = 1;
            e->u8_need = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : 2;
        }
    }
    if (n == 0 || e->qlen + (size_t)n >= sizeof e->query) return true;
    memcpy(e->query + e->qlen, ch, (size_t)n);
    e->qlen += (size_t)n;
    e->query[e->qlen] = 0;
    search_from(e, e->search_idx >= 0 && e->search_idx < n_hist ? e->search_idx : n_hist - 1);
    return true;
}

// ---- completion -----------------------------------------------------------------------------

static le_result complete(le_state *e) {
    bool second = e->last_tab;
    e->last_tab = true;
    if (e->len == 0 || e->buf[0] != '/' || e->pos != e->len) {
        if (e->len && e->buf[0] == '/') return LE_MORE;
        insert(e, "\t", 1);
        e->last_tab = false;
        return LE_MORE;
    }
    const char *first = NULL;
    size_t common = 0;
    int n = 0;
    for (int i = 0; i < e->n_words; i++) {
        const char *w = e->words[i];
        if (strncmp(w, e->buf, e->len) != 0) continue;
        if (n < (int)(sizeof e->list / sizeof e->list[0])) e->list[n] = w;
        if (!first) {
            first = w;
            common = strlen(w);
        } else {
            size_t k = 0;
            while (k < common && w[k] == first[k]) k++;
            common = k;
        }
        n++;
    }
    if (n == 0) return LE_MORE;
    if (n == 1) {
        le_set_text(e, first, strlen(first));
        size_t l = strlen(first);
        if (l && first[l - 1] != ' ') insert(e, " ", 1);
        e->last_tab = false;
        return LE_MORE;
    }
    if (common > e->len) {
        le_set_text(e, first, common);
        return LE_MORE;
    }
    if (second) {
        e->n_list = n < (int)(sizeof e->list / sizeof e->list[0]) ? n : (int)(sizeof e->list / sizeof e->list[0]);
        e->last_tab = false;
        return LE_LIST;
    }
    return LE_MORE;
}

// ---- continuation ---------------------------------------------------------------------------

static const char *skip_space(const char *s, const char *end) {
    while (s < end && (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r')) s++;
    return s;
}

int le_continues(const char *s, size_t len) {
    const char *end = s + len, *b = skip_space(s, end);
    if (end - b >= 3 && !memcmp(b, "\"\"\"", 3)) {
        // Open until a second """ appears.
        for (const char *p = b + 3; p + 3 <= end; p++)
            if (!memcmp(p, "\"\"\"", 3)) return 0;
        return 2;
    }
    if (len && s[len - 1] == '\\') return 1;
    return 0;
}

char *le_message(const char *s, size_t len) {
    const char *end = s + len, *b = skip_space(s, end);
    const char *from = s, *to = end;
    if (end - b >= 3 && !memcmp(b, "\"\"\"", 3)) {
        from = b + 3;
        to = end;
        for (const char *p = from; p + 3 <= end; p++)
            if (!memcmp(p, "\"\"\"", 3)) {
                to = p;
                break;
            }
        if (from < to && *from == '\n') from++;
        if (to > from && to[-1] == '\n') to--;
    }
    char *m = malloc((size_t)(to - from) + 1);
    if (!m) return NULL;
    memcpy(m, from, (size_t)(to - from));
    m[to - from] = 0;
    return m;
}

// ---- keys -----------------------------------------------------------------------------------

static le_result enter(le_state *e) {
    int k = le_continues(e->buf, e->len);
    if (k == 0) return LE_SUBMIT;
    if (k == 1) e->buf[--e->len] = 0; // the backslash becomes the line break
    e->pos = e->len;
    insert(e, "\n", 1);
    return LE_MORE;
}

static void move_left(le_state *e) {
    if (e->pos) e->pos = le_grapheme_prev(e->buf, e->len, e->pos);
}

static void move_right(le_state *e) {
    e->pos += le_grapheme_next(e->buf, e->len, e->pos);
}

static void backspace(le_state *e) {
    if (e->pos) erase(e, le_grapheme_prev(e->buf, e->len, e->pos), e->pos, false);
}

static void delete_at(le_state *e) {
    if (e->pos < e->len) erase(e, e->pos, e->pos + le_grapheme_next(e->buf, e->len, e->pos), false);
}

// A complete CSI (ESC [ params final) or SS3 (ESC O final) sequence.
static le_result csi(le_state *e, char final) {
    const char *p = e->seq;
    int n = atoi(p);
    // Modifier after ';' (1;5C): 5 = Ctrl, 3 = Alt.
    const char *semi = strchr(p, ';');
    int mod = semi ? atoi(semi + 1) : 1;
    bool word = mod == 5 || mod == 3;
    switch (final) {
    case 'A': history_go(e, +1); break;
    case 'B': history_go(e, -1); break;
    case 'C': if (word) e->pos = word_right(e, e->pos); else move_right(e); break;
    case 'D': if (word) e->pos = word_left(e, e->pos); else move_left(e); break;
    case 'c': e->pos = word_right(e, e->pos); break; // rxvt Ctrl-Right (ESC O c)
    case 'd': e->pos = word_left(e, e->pos); break;
    case 'H': e->pos = line_start(e, e->pos); break;
    case 'F': e->pos = line_end(e, e->pos); break;
    case '~':
        switch (n) {
        case 1: case 7: e->pos = line_start(e, e->pos); break;
        case 4: case 8: e->pos = line_end(e, e->pos); break;
        case 3: delete_at(e); break;
        case 200: e->paste = true; e->paste_cr = false; break;
        case 201: e->paste = false; break;
        default: break;
        }
        break;
    default: break;
    }
    return LE_MORE;
}

static le_result alt_key(le_state *e, unsigned char c) {
    switch (c) {
    case 'b': case 'B': e->pos = word_left(e, e->pos); break;
    case 'f': case 'F': e->pos = word_right(e, e->pos); break;
    case 'd': case 'D': erase(e, e->pos, word_right(e, e->pos), true); break;
    case 127: case CTRL('H'): erase(e, word_left(e, e->pos), e->pos, true); break;
    case '\r': insert(e, "\n", 1); break; // Alt-Enter: a line break without sending
    default: break;
    }
    return LE_MORE;
}

// Collects a UTF-8 sequence; inserts it (or U+FFFD if invalid) when complete.
static void text_byte(le_state *e, unsigned char c) {
    static const char replacement[] = "\xEF\xBF\xBD";
    if (e->u8_need) {
        if ((c & 0xC0) == 0x80) {
            e->u8[e->u8_len++] = c;
            if (e->u8_len < e->u8_need) return;
            utf8proc_int32_t cp;
            if (decode((const char *)e->u8, (size_t)e->u8_len, 0, &cp) == e->u8_len) insert(e, (const char *)e->u8, (size_t)e->u8_len);
            else insert(e, replacement, 3);
            e->u8_need = e->u8_len = 0;
            return;
        }
        insert(e, replacement, 3); // truncated sequence; c starts something new
        e->u8_need = e->u8_len = 0;
    }
    if (c < 0x80) {
        char ch = (char)c;
        insert(e, &ch, 1);
    } else if (c >= 0xC2 && c <= 0xF4) {
        e->u8[0] = c;
        e->u8_len = 1;
        e->u8_need = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : 2;
    } else {
        insert(e, replacement, 3);
    }
}

le_result le_feed(le_state *e, unsigned char c) {
    // Escape sequences (also inside a paste, to see its end).
    if (e->esc == 1) {
        if (c == '[') { e->esc = 2; e->seq_len = 0; e->seq[0] = 0; return LE_MORE; }
        if (c == 'O') { e->esc = 3; return LE_MORE; }
        e->esc = 0;
        if (e->paste) return LE_MORE;
        if (e->searching) search_end(e, false);
        if (c == 0x1b) { e->esc = 1; return LE_MORE; }
        return alt_key(e, c);
    }
    if (e->esc == 2) {
        if (c >= 0x30 && c <= 0x3f) {
            if (e->seq_len + 1 < (int)sizeof e->seq) {
                e->seq[e->seq_len++] = (char)c;
                e->seq[e->seq_len] = 0;
            }
            return LE_MORE;
        }
        e->esc = 0;
        if (c < 0x40 || c > 0x7e) return LE_MORE; // malformed: drop it
        if (e->paste && !(c == '~' && atoi(e->seq) == 201)) return LE_MORE;
        if (e->searching) search_end(e, false);
        e->last_tab = false;
        return csi(e, (char)c);
    }
    if (e->esc == 3) {
        e->esc = 0;
        e->seq[0] = 0;
        if (e->paste) return LE_MORE;
        if (e->searching) search_end(e, false);
        return csi(e, (char)c);
    }
    if (c == 0x1b) {
        e->esc = 1;
        return LE_MORE;
    }

    if (e->paste) { // pasted text is text, line breaks included
        if (c == '\r' || (c == '\n' && !e->paste_cr)) {
            if (e->u8_need) text_byte(e, '\n'); // flush a truncated sequence
            else insert(e, "\n", 1);
        } else if (c == '\t' || c >= 0x20) {
            text_byte(e, c);
        }
        e->paste_cr = c == '\r';
        return LE_MORE;
    }

    if (e->searching && search_key(e, c)) return LE_MORE;
    if (e->u8_need && (c & 0xC0) != 0x80 && c < 0x20) { // a key cuts a character short
        e->u8_need = e->u8_len = 0;
        insert(e, "\xEF\xBF\xBD", 3);
    }

    bool tab = c == '\t';
    if (!tab) e->last_tab = false;
    switch (c) {
    case '\r': case '\n': return enter(e);
    case '\t': return complete(e);
    case CTRL('A'): e->pos = line_start(e, e->pos); break;
    case CTRL('E'): e->pos = line_end(e, e->pos); break;
    case CTRL('B'): move_left(e); break;
    case CTRL('F'): move_right(e); break;
    case CTRL('C'): return LE_INTERRUPT;
    case CTRL('D'):
        if (e->len == 0) return LE_EOF;
        delete_at(e);
        break;
    case 127: case CTRL('H'): backspace(e); break;
    case CTRL('K'): erase(e, e->pos, line_end(e, e->pos), true); break;
    case CTRL('U'): erase(e, line_start(e, e->pos), e->pos, true); break;
    case CTRL('W'): erase(e, space_word_left(e, e->pos), e->pos, true); break;
    case CTRL('Y'): if (e->kill) insert(e, e->kill, e->kill_len); break;
    case CTRL('L'): return LE_CLEAR_SCREEN;
    case CTRL('P'): history_go(e, +1); break;
    case CTRL('N'): history_go(e, -1); break;
    case CTRL('R'):
        search_start(e);
        break;
    case CTRL('T'): { // swap the two clusters before the cursor (or around it)
        if (e->pos == 0 || e->len < 2) break;
        if (e->pos == e->len) e->pos = le_grapheme_prev(e->buf, e->len, e->pos);
        size_t a = le_grapheme_prev(e->buf, e->len, e->pos);
        size_t bn = le_grapheme_next(e->buf, e->len, e->pos);
        size_t an = e->pos - a;
        char tmp[64];
        if (an + bn > sizeof tmp) break;
        memcpy(tmp, e->buf + e->pos, bn);
        memcpy(tmp + bn, e->buf + a, an);
        memcpy(e->buf + a, tmp, an + bn);
        e->pos = a + an + bn;
        break;
    }
    default:
        if (c >= 0x20 || e->u8_need) text_byte(e, c);
        break;
    }
    return LE_MORE;
}

le_result le_feed_str(le_state *e, const char *s) {
    for (; *s; s++) {
        le_result r = le_feed(e, (unsigned char)*s);
        if (r != LE_MORE) return r;
    }
    return LE_MORE;
}

const char *le_prompt(const le_state *e, const char *normal, char *tmp, size_t tmp_size) {
    if (!e->searching) return normal;
    snprintf(tmp, tmp_size, "(%sreverse-i-search)`%s': ", e->search_failed ? "failed " : "", e->query);
    return tmp;
}
