// A small line editor for the chat REPL (linenoise-sized, UTF-8 aware).
//
// Two layers:
//   - le_state: a pure state machine. Bytes from the keyboard go in (le_feed); the text, the
//     cursor and an action come out. No I/O, so tests drive it with key sequences.
//   - le_term: the terminal around it: raw mode, drawing the prompt and the (possibly wrapped,
//     multi-line) text, resize redraws, reading lines from a pipe when stdin is not a terminal,
//     and always restoring the terminal (atexit, SIGTERM/SIGHUP/SIGQUIT, errors).
//
// The cursor moves by grapheme cluster (utf8proc), wide characters take two columns and
// combining marks none. A message may span several lines: a line ending in '\' continues,
// '"""' opens a block that a second '"""' closes, and bracketed paste keeps pasted newlines.
#ifndef LLAMALITE_CLI_LINEEDIT_H
#define LLAMALITE_CLI_LINEEDIT_H

#include <stdbool.h>
#include <stddef.h>

// ---- history --------------------------------------------------------------------------------
typedef struct {
    char **items;   // oldest first; entries may contain '\n'
    int n, cap;
    int max;        // bound: the oldest entries are dropped beyond it
} le_history;

void le_history_init(le_history *h, int max);
void le_history_free(le_history *h);
// Adds a copy of s (skipped when empty or equal to the newest entry). Returns false when out
// of memory.
bool le_history_add(le_history *h, const char *s);
// Loads entries from a file written by le_history_save (a missing file is not an error).
bool le_history_load(le_history *h, const char *path);
// Writes the entries (one per line, '\n' and '\\' escaped) atomically; creates the directory.
bool le_history_save(const le_history *h, const char *path);
// $XDG_STATE_HOME/llamalite/history, else ~/.llamalite_history; malloc'd, NULL if no home.
char *le_history_default_path(void);

// ---- the editing state machine --------------------------------------------------------------
typedef enum {
    LE_MORE = 0,      // keep reading (redraw)
    LE_SUBMIT,        // Enter on a complete message: the text is in buf
    LE_EOF,           // Ctrl-D on an empty line
    LE_INTERRUPT,     // Ctrl-C
    LE_CLEAR_SCREEN,  // Ctrl-L
    LE_LIST,          // a second Tab with several completions: show list[0..n_list)
} le_result;

typedef struct {
    char *buf;            // the text being edited, NUL-terminated UTF-8; may hold '\n'
    size_t len, cap;
    size_t pos;           // cursor: a byte offset on a grapheme boundary

    // input decoding
    int esc;              // 0 none, 1 after ESC, 2 in CSI (ESC [), 3 after ESC O
    char seq[16];         // CSI parameter bytes
    int seq_len;
    unsigned char u8[4];  // a UTF-8 sequence being assembled
    int u8_len, u8_need;
    bool paste;           // inside a bracketed paste
    bool paste_cr;        // the last pasted byte was '\r' (so a following '\n' is the same break)

    // history
    le_history *hist;     // may be NULL
    int hist_idx;         // 0: the line being typed; k: the k-th newest entry
    char *draft;          // the line being typed, saved while browsing

    // reverse incremental search (Ctrl-R)
    bool searching;
    bool search_failed;
    char query[128];
    size_t qlen;
    int search_idx;       // index into hist->items of the current match, -1 none
    char *search_saved;   // the line before the search (restored by Ctrl-G)
    size_t search_saved_pos;

    // completion of '/' commands
    const char *const *words;
    int n_words;
    bool last_tab;
    const char *list[64]; // matches to show after LE_LIST
    int n_list;

    char *kill;           // the last killed text (Ctrl-K/U/W), yanked by Ctrl-Y
    size_t kill_len;
} le_state;

void le_init(le_state *e, le_history *hist);
void le_free(le_state *e);
// Starts a new, empty line (keeps history and completion words).
void le_reset(le_state *e);
// Words that Tab completes when the line starts with '/', e.g. "/help", "/set temp ".
void le_set_completions(le_state *e, const char *const *words, int n);
// One input byte. Returns what the caller should do next.
le_result le_feed(le_state *e, unsigned char c);
// Feeds a string (for tests); stops at and returns the first result other than LE_MORE.
le_result le_feed_str(le_state *e, const char *s);
// Replaces the whole text (cursor at the end).
bool le_set_text(le_state *e, const char *s, size_t n);
// The prompt to show: the search prompt while searching, else normal.
const char *le_prompt(const le_state *e, const char *normal, char *tmp, size_t tmp_size);

// Continuation rules shared by the terminal and the pipe: 0 the text is a complete message,
// 1 it ends in a backslash (the line continues), 2 a '"""' block is still open.
int le_continues(const char *s, size_t len);
// The message to send for a complete text: a '"""' block loses its delimiters (and the
// newline right after the opening and before the closing one). Returns a malloc'd string.
char *le_message(const char *s, size_t len);

// ---- layout (pure) --------------------------------------------------------------------------
typedef struct {
    int row, col;
} le_pos;

// Byte length of the grapheme cluster that starts at s[i] (1 for invalid UTF-8).
size_t le_grapheme_next(const char *s, size_t len, size_t i);
// Start of the grapheme cluster that ends at i (i > 0).
size_t le_grapheme_prev(const char *s, size_t len, size_t i);
// Columns a cluster takes when it starts at column col of a row of cols columns: 2 for wide
// characters, 0 for a lone combining mark, 2 for a control character (shown as ^X), up to the
// next multiple of 4 for a tab.
int le_cluster_width(const char *s, size_t n, int col, int cols);
// Width of a prompt (ANSI colour sequences take no room).
int le_text_width(const char *s);
// Where text s[0..len) lands when drawn from *at in rows of cols columns, as a terminal with
// auto-wrap draws it: sets *cursor to the place of byte offset pos and advances *at to the end.
// A wide character that does not fit at the end of a row goes to the next row. Returns true
// when the text ends exactly at the right margin (the terminal's wrap is still pending).
bool le_layout(const char *s, size_t len, size_t pos, int cols, le_pos *at, le_pos *cursor);

// ---- terminal -------------------------------------------------------------------------------
typedef struct {
    int in_fd, out_fd;
    bool tty;             // raw-mode editing (both ends are terminals and TERM is not dumb)
    bool color;           // colour the prompt and the typed text
    int cols;
    int cursor_row;       // rows from the first prompt row to the cursor, as last drawn
    char pending[4096];   // bytes read but not yet fed (typed ahead after a submit)
    size_t pend_off, pend_len;
    bool eof;
} le_term;

void le_term_init(le_term *t, int in_fd, int out_fd, bool color);
// Reads one message. LE_SUBMIT: *out is the malloc'd message (history is the caller's job,
// via e->hist). LE_EOF at the end of input or Ctrl-D; LE_INTERRUPT on Ctrl-C (the typed text
// is dropped). The terminal is in raw mode only inside this call.
le_result le_readline(le_term *t, le_state *e, const char *prompt, char **out);
// While a reply is generated: no echo and no line buffering (typed text waits for the next
// prompt), but Ctrl-C still raises SIGINT. Off restores the original mode.
void le_term_quiet(le_term *t, bool on);
// Puts the terminal back as it was found (safe to call any time, and from signal handlers).
void le_term_restore(void);

#endif
