// The line editor's state machine without a terminal: key sequences in, text + cursor out.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/history.c"
#include "cli/lineedit.c"
#include "tests/test_util.h"

#define LEFT "\x1b[D"
#define RIGHT "\x1b[C"
#define UP "\x1b[A"
#define DOWN "\x1b[B"
#define HOME "\x1b[H"
#define END "\x1b[F"
#define DEL "\x1b[3~"
#define CLEFT "\x1b[1;5D"
#define CRIGHT "\x1b[1;5C"
#define BS "\x7f"

// Cursor column after a prompt of width pw, on a row of cols columns.
static le_pos cursor_at(const le_state *e, int pw, int cols) {
    le_pos at = {0, pw}, cur;
    le_layout(e->buf, e->len, e->pos, cols, &at, &cur);
    return cur;
}

static void fresh(le_state *e, const char *keys) {
    le_reset(e);
    le_feed_str(e, keys);
}

#define CHECK_TEXT(e, s, p)                                                                  \
    CHECK(!strcmp((e)->buf, (s)) && (e)->pos == (size_t)(p), "text '%s' pos %zu, want '%s' pos %d", \
          (e)->buf, (e)->pos, (s), (int)(p))

static void test_ascii(void) {
    le_state e;
    le_init(&e, NULL);
    fresh(&e, "hello");
    CHECK_TEXT(&e, "hello", 5);
    le_feed_str(&e, LEFT LEFT);
    CHECK_TEXT(&e, "hello", 3);
    le_feed_str(&e, "X");
    CHECK_TEXT(&e, "helXlo", 4);
    le_feed_str(&e, "\x01"); // Ctrl-A
    CHECK_TEXT(&e, "helXlo", 0);
    le_feed_str(&e, "\x05"); // Ctrl-E
    CHECK_TEXT(&e, "helXlo", 6);
    le_feed_str(&e, HOME "\x06\x06" BS); // Ctrl-F twice, backspace
    CHECK_TEXT(&e, "hlXlo", 1);
    le_feed_str(&e, DEL);
    CHECK_TEXT(&e, "hXlo", 1);
    le_feed_str(&e, "\x04"); // Ctrl-D deletes under the cursor
    CHECK_TEXT(&e, "hlo", 1);
    le_feed_str(&e, END "\x02"); // Ctrl-B
    CHECK_TEXT(&e, "hlo", 2);
    le_feed_str(&e, "\x1bOH"); // SS3 home
    CHECK(e.pos == 0, "ESC O H: pos %zu", e.pos);
    le_feed_str(&e, "\x1b[4~"); // vt end
    CHECK(e.pos == 3, "ESC [4~: pos %zu", e.pos);
    le_pos c = cursor_at(&e, 2, 80);
    CHECK(c.row == 0 && c.col == 5, "cursor %d,%d", c.row, c.col);
    // Left at the start and Right at the end do nothing.
    fresh(&e, LEFT "ab" RIGHT RIGHT);
    CHECK_TEXT(&e, "ab", 2);
    le_free(&e);
}

static void test_kill_and_words(void) {
    le_state e;
    le_init(&e, NULL);
    fresh(&e, "foo bar_baz, qux");
    le_feed_str(&e, CLEFT);
    CHECK(e.pos == 13, "ctrl-left 1: %zu", e.pos);
    le_feed_str(&e, CLEFT);
    CHECK(e.pos == 4, "ctrl-left 2: %zu", e.pos);
    le_feed_str(&e, CLEFT CLEFT);
    CHECK(e.pos == 0, "ctrl-left 3: %zu", e.pos);
    le_feed_str(&e, CRIGHT);
    CHECK(e.pos == 3, "ctrl-right 1: %zu", e.pos);
    le_feed_str(&e, CRIGHT);
    CHECK(e.pos == 11, "ctrl-right 2: %zu", e.pos);
    le_feed_str(&e, "\x1b" "b"); // Alt-B
    CHECK(e.pos == 4, "alt-b: %zu", e.pos);
    le_feed_str(&e, "\x1b" "f"); // Alt-F
    CHECK(e.pos == 11, "alt-f: %zu", e.pos);
    le_feed_str(&e, "\x0b"); // Ctrl-K
    CHECK_TEXT(&e, "foo bar_baz", 11);
    le_feed_str(&e, "\x17"); // Ctrl-W: back to the space
    CHECK_TEXT(&e, "foo ", 4);
    le_feed_str(&e, "\x19"); // Ctrl-Y yanks the last kill
    CHECK_TEXT(&e, "foo bar_baz", 11);
    le_feed_str(&e, LEFT LEFT "\x15"); // Ctrl-U
    CHECK_TEXT(&e, "az", 0);
    le_feed_str(&e, "\x19");
    CHECK_TEXT(&e, "foo bar_baz", 9);
    fresh(&e, "one two  \x17");
    CHECK_TEXT(&e, "one ", 4);
    le_free(&e);
}

static void test_wide_and_combining(void) {
    le_state e;
    le_init(&e, NULL);
    // a 日 本 b: 1 + 2 + 2 + 1 columns.
    fresh(&e, "a\xe6\x97\xa5\xe6\x9c\xac" "b");
    le_pos c = cursor_at(&e, 2, 80);
    CHECK(c.col == 8, "after a日本b: col %d", c.col);
    le_feed_str(&e, LEFT);
    c = cursor_at(&e, 2, 80);
    CHECK(e.pos == 7 && c.col == 7, "left over b: pos %zu col %d", e.pos, c.col);
    le_feed_str(&e, LEFT);
    c = cursor_at(&e, 2, 80);
    CHECK(e.pos == 4 && c.col == 5, "left over 本: pos %zu col %d", e.pos, c.col);
    le_feed_str(&e, BS);
    CHECK_TEXT(&e, "a\xe6\x9c\xac" "b", 1);
    c = cursor_at(&e, 2, 80);
    CHECK(c.col == 3, "after deleting 日: col %d", c.col);

    // e + COMBINING ACUTE is one cluster of width 1.
    fresh(&e, "e\xcc\x81x");
    CHECK(e.len == 4, "len %zu", e.len);
    c = cursor_at(&e, 0, 80);
    CHECK(c.col == 2, "é x: col %d", c.col);
    le_feed_str(&e, LEFT LEFT);
    CHECK(e.pos == 0, "left twice over éx: pos %zu", e.pos);
    le_feed_str(&e, RIGHT);
    CHECK(e.pos == 3, "right over é: pos %zu", e.pos);
    le_feed_str(&e, END BS BS);
    CHECK_TEXT(&e, "", 0);

    // A regional-indicator flag is one cluster; a ZWJ family too.
    fresh(&e, "\xf0\x9f\x87\xab\xf0\x9f\x87\xb7" LEFT);
    CHECK(e.pos == 0, "flag is one cluster: pos %zu", e.pos);
    fresh(&e, "x\xf0\x9f\x91\xa9\xe2\x80\x8d\xf0\x9f\x91\xa7" LEFT);
    CHECK(e.pos == 1, "ZWJ sequence is one cluster: pos %zu", e.pos);

    // A Hangul syllable typed as jamo (L V T) is one cluster of width 2.
    fresh(&e, "\xe1\x84\x92\xe1\x85\xa1\xe1\x86\xab");
    c = cursor_at(&e, 0, 80);
    CHECK(c.col == 2, "hangul jamo col %d", c.col);
    le_feed_str(&e, LEFT);
    CHECK(e.pos == 0, "jamo cluster: pos %zu", e.pos);

    // Invalid bytes become U+FFFD, one column each.
    fresh(&e, "a\xff" "b\xc3(");
    CHECK(!strcmp(e.buf, "a\xef\xbf\xbd" "b\xef\xbf\xbd("), "invalid UTF-8 -> U+FFFD: '%s'", e.buf);
    // Overlong encodings are rejected too.
    fresh(&e, "\xc0\xaf");
    CHECK(!strcmp(e.buf, "\xef\xbf\xbd\xef\xbf\xbd"), "overlong: '%s'", e.buf);
    le_free(&e);
}

static void test_layout(void) {
    le_pos at, cur;
    // Exactly filling a row leaves the wrap pending: the end is the next row's start.
    at = (le_pos){0, 2};
    bool pending = le_layout("12345678", 8, 8, 10, &at, &cur);
    CHECK(pending && at.row == 1 && at.col == 0 && cur.row == 1 && cur.col == 0,
          "exact fill: pending %d end %d,%d cursor %d,%d", pending, at.row, at.col, cur.row, cur.col);
    at = (le_pos){0, 2};
    pending = le_layout("123456789", 9, 3, 10, &at, &cur);
    CHECK(!pending && at.row == 1 && at.col == 1 && cur.row == 0 && cur.col == 5,
          "wrap: end %d,%d cursor %d,%d", at.row, at.col, cur.row, cur.col);
    // A wide character that does not fit at the margin moves to the next row.
    const char *s = "123456789\xe6\x97\xa5";
    at = (le_pos){0, 0};
    pending = le_layout(s, strlen(s), 9, 10, &at, &cur);
    CHECK(!pending && at.row == 1 && at.col == 2 && cur.row == 1 && cur.col == 0,
          "wide wrap: end %d,%d cursor %d,%d", at.row, at.col, cur.row, cur.col);
    s = "12345678\xe6\x97\xa5";
    at = (le_pos){0, 0};
    pending = le_layout(s, strlen(s), strlen(s), 10, &at, &cur);
    CHECK(pending && at.row == 1 && at.col == 0, "wide exact fill: end %d,%d", at.row, at.col);
    // Line breaks in the text.
    at = (le_pos){0, 2};
    le_layout("ab\ncd", 5, 5, 80, &at, &cur);
    CHECK(cur.row == 1 && cur.col == 2, "newline: cursor %d,%d", cur.row, cur.col);
    at = (le_pos){0, 2};
    le_layout("ab\ncd", 5, 3, 80, &at, &cur);
    CHECK(cur.row == 1 && cur.col == 0, "after newline: cursor %d,%d", cur.row, cur.col);
    at = (le_pos){0, 2};
    le_layout("ab\ncd", 5, 2, 80, &at, &cur);
    CHECK(cur.row == 0 && cur.col == 4, "on newline: cursor %d,%d", cur.row, cur.col);
    // Tabs reach the next multiple of 4; control characters show as ^X.
    at = (le_pos){0, 1};
    le_layout("\tx", 2, 2, 80, &at, &cur);
    CHECK(cur.col == 5, "tab: col %d", cur.col);
    at = (le_pos){0, 0};
    le_layout("\x01y", 2, 2, 80, &at, &cur);
    CHECK(cur.col == 3, "control: col %d", cur.col);
    CHECK(le_text_width("\x1b[1;32m> \x1b[0m") == 2, "prompt width %d", le_text_width("\x1b[1;32m> \x1b[0m"));
    CHECK(le_text_width("\xe4\xbd\xa0> ") == 4, "wide prompt");
}

static void test_history(void) {
    le_history h;
    le_history_init(&h, 3);
    le_state e;
    le_init(&e, &h);
    le_history_add(&h, "one");
    le_history_add(&h, "two");
    le_history_add(&h, "two"); // repeated: kept once
    le_history_add(&h, "");
    CHECK(h.n == 2, "n %d", h.n);
    fresh(&e, "dra");
    le_feed_str(&e, UP);
    CHECK_TEXT(&e, "two", 3);
    le_feed_str(&e, UP);
    CHECK_TEXT(&e, "one", 3);
    le_feed_str(&e, UP); // no older entry
    CHECK_TEXT(&e, "one", 3);
    le_feed_str(&e, DOWN);
    CHECK_TEXT(&e, "two", 3);
    le_feed_str(&e, DOWN);
    CHECK_TEXT(&e, "dra", 3);
    le_feed_str(&e, DOWN);
    CHECK_TEXT(&e, "dra", 3);
    le_feed_str(&e, "\x10"); // Ctrl-P
    CHECK_TEXT(&e, "two", 3);
    le_feed_str(&e, "\x0e"); // Ctrl-N
    CHECK_TEXT(&e, "dra", 3);
    // Bounded: the oldest goes.
    le_history_add(&h, "three");
    le_history_add(&h, "four");
    CHECK(h.n == 3 && !strcmp(h.items[0], "two") && !strcmp(h.items[2], "four"), "bounded: n %d first %s",
          h.n, h.items[0]);

    // File round trip, with a multi-line entry and backslashes.
    char dir[] = "/tmp/llamalite-histXXXXXX";
    CHECK(mkdtemp(dir) != NULL, "mkdtemp");
    char path[256];
    snprintf(path, sizeof path, "%s/sub/history", dir);
    le_history_add(&h, "line1\nline2 \\n back\\slash");
    CHECK(le_history_save(&h, path), "save");
    le_history h2;
    le_history_init(&h2, 100);
    CHECK(le_history_load(&h2, path), "load");
    CHECK(h2.n == 3, "loaded %d", h2.n);
    if (h2.n == 3) CHECK(!strcmp(h2.items[2], "line1\nline2 \\n back\\slash"), "multi-line entry: '%s'", h2.items[2]);
    le_history h3;
    le_history_init(&h3, 2); // loading into a smaller bound keeps the newest
    le_history_load(&h3, path);
    CHECK(h3.n == 2 && !strcmp(h3.items[0], "four"), "bounded load: %d", h3.n);
    char missing[300];
    snprintf(missing, sizeof missing, "%s/none", dir);
    CHECK(le_history_load(&h3, missing), "a missing file is fine");
    remove(path);
    snprintf(path, sizeof path, "%s/sub", dir);
    rmdir(path);
    rmdir(dir);
    le_history_free(&h2);
    le_history_free(&h3);

    // Default path: XDG_STATE_HOME first, then HOME.
    setenv("XDG_STATE_HOME", "/x/state", 1);
    char *p = le_history_default_path();
    CHECK(p && !strcmp(p, "/x/state/llamalite/history"), "xdg path %s", p ? p : "(null)");
    free(p);
    unsetenv("XDG_STATE_HOME");
    setenv("HOME", "/home/u", 1);
    p = le_history_default_path();
    CHECK(p && !strcmp(p, "/home/u/.llamalite_history"), "home path %s", p ? p : "(null)");
    free(p);
    le_free(&e);
    le_history_free(&h);
}

static void test_search(void) {
    le_history h;
    le_history_init(&h, 100);
    le_history_add(&h, "git status");
    le_history_add(&h, "make test");
    le_history_add(&h, "git commit");
    le_state e;
    le_init(&e, &h);
    fresh(&e, "typed\x12" "git");
    CHECK(e.searching, "searching");
    CHECK_TEXT(&e, "git commit", 0);
    char tmp[256];
    CHECK(!strcmp(le_prompt(&e, "> ", tmp, sizeof tmp), "(reverse-i-search)`git': "), "search prompt '%s'", tmp);
    le_feed_str(&e, "\x12"); // older match
    CHECK_TEXT(&e, "git status", 0);
    le_feed_str(&e, "\x12"); // none older: stays
    CHECK_TEXT(&e, "git status", 0);
    le_result r = le_feed_str(&e, "\r");
    CHECK(r == LE_SUBMIT && !e.searching, "enter accepts and submits: %d", r);
    CHECK_TEXT(&e, "git status", 0);

    fresh(&e, "typed\x12" "tes");
    CHECK_TEXT(&e, "make test", 5);
    le_feed_str(&e, "\x07"); // Ctrl-G restores
    CHECK(!e.searching, "cancelled");
    CHECK_TEXT(&e, "typed", 5);

    fresh(&e, "\x12" "zzz");
    CHECK(e.search_failed, "no match");
    le_feed_str(&e, BS BS BS "mak");
    CHECK(!e.search_failed, "match after backspace");
    CHECK_TEXT(&e, "make test", 0);
    le_feed_str(&e, END); // a movement key accepts the match and moves
    CHECK(!e.searching, "accepted");
    CHECK_TEXT(&e, "make test", 9);
    // The query takes whole UTF-8 characters only: a stray byte of 日 matches nothing.
    le_history_add(&h, "x\xe6\x97\xa5y");
    fresh(&e, "\x12\x97");
    CHECK(e.qlen == 0 && !e.search_failed, "stray continuation byte ignored: qlen %zu", e.qlen);
    le_feed_str(&e, "\xe6\x97");
    CHECK(e.qlen == 0, "incomplete character waits: qlen %zu", e.qlen);
    le_feed_str(&e, "\xa5");
    CHECK_TEXT(&e, "x\xe6\x97\xa5y", 1);
    le_feed_str(&e, "\x07");
    le_free(&e);
    le_history_free(&h);
}

static void test_completion(void) {
    static const char *const words[] = {"/help", "/hello ", "/show", "/set temp ", "/set top_k "};
    le_state e;
    le_init(&e, NULL);
    le_set_completions(&e, words, 5);
    fresh(&e, "/sh\t");
    CHECK_TEXT(&e, "/show ", 6);
    fresh(&e, "/h\t");
    CHECK_TEXT(&e, "/hel", 4);
    le_result r = le_feed(&e, '\t');
    CHECK(r == LE_LIST && e.n_list == 2, "second tab lists: %d n %d", r, e.n_list);
    fresh(&e, "/set t\t");
    CHECK_TEXT(&e, "/set t", 6);
    fresh(&e, "/set te\t");
    CHECK_TEXT(&e, "/set temp ", 10);
    fresh(&e, "/zz\t");
    CHECK_TEXT(&e, "/zz", 3);
    fresh(&e, "a\t"); // not a command: a tab character
    CHECK_TEXT(&e, "a\t", 2);
    le_free(&e);
}

static void test_multiline(void) {
    le_state e;
    le_init(&e, NULL);
    le_reset(&e);
    CHECK(le_feed_str(&e, "abc\\\r") == LE_MORE, "backslash continues");
    CHECK_TEXT(&e, "abc\n", 4);
    CHECK(le_feed_str(&e, "def\r") == LE_SUBMIT, "then enter sends");
    CHECK_TEXT(&e, "abc\ndef", 7);
    // Home/End and Ctrl-A/E stay on the current line.
    fresh(&e, "ab\\\rcd\x01");
    CHECK(e.pos == 3, "ctrl-a on 2nd line: %zu", e.pos);
    le_feed_str(&e, LEFT);
    CHECK(e.pos == 2, "left onto the line break: %zu", e.pos);
    le_feed_str(&e, "\x01");
    CHECK(e.pos == 0, "ctrl-a on 1st line: %zu", e.pos);
    le_feed_str(&e, "\x05");
    CHECK(e.pos == 2, "ctrl-e on 1st line: %zu", e.pos);

    le_reset(&e);
    CHECK(le_feed_str(&e, "\"\"\"\r") == LE_MORE, "\"\"\" opens");
    CHECK(le_feed_str(&e, "x = 1\\\r") == LE_MORE, "inside");
    CHECK(le_feed_str(&e, "\r") == LE_MORE, "empty line inside");
    CHECK(le_feed_str(&e, "\"\"\"\r") == LE_SUBMIT, "\"\"\" closes");
    char *m = le_message(e.buf, e.len);
    CHECK(m && !strcmp(m, "x = 1\\\n"), "block message '%s'", m ? m : "(null)");
    free(m);
    m = le_message("\"\"\"one line\"\"\"", 14);
    CHECK(m && !strcmp(m, "one line"), "inline block '%s'", m ? m : "(null)");
    free(m);
    m = le_message("plain", 5);
    CHECK(m && !strcmp(m, "plain"), "plain");
    free(m);
    CHECK(le_continues("a\\", 2) == 1 && le_continues("a", 1) == 0 && le_continues("  \"\"\"x", 6) == 2 &&
              le_continues("\"\"\"x\"\"\"", 7) == 0,
          "le_continues");

    // Bracketed paste keeps line breaks (CR LF is one) and does not send.
    le_reset(&e);
    le_result r = le_feed_str(&e, "\x1b[200~line1\r\nline2\rline3\n\x1b[201~");
    CHECK(r == LE_MORE, "paste does not send");
    CHECK_TEXT(&e, "line1\nline2\nline3\n", 18);
    CHECK(!e.paste, "paste ended");
    // Keys inside a paste are text (no Ctrl-C, no escape meaning).
    le_reset(&e);
    r = le_feed_str(&e, "\x1b[200~a\x03\x1b[Db\x1b[201~");
    CHECK(r == LE_MORE, "ctrl-c in paste: %d", r);
    CHECK_TEXT(&e, "ab", 2);
    le_free(&e);
}

static void test_actions(void) {
    le_state e;
    le_init(&e, NULL);
    le_reset(&e);
    CHECK(le_feed(&e, 4) == LE_EOF, "ctrl-d on empty line");
    fresh(&e, "x");
    CHECK(le_feed(&e, 4) == LE_MORE, "ctrl-d with text deletes");
    CHECK(le_feed(&e, 3) == LE_INTERRUPT, "ctrl-c");
    CHECK(le_feed(&e, 12) == LE_CLEAR_SCREEN, "ctrl-l");
    fresh(&e, "hi\r");
    CHECK_TEXT(&e, "hi", 2);
    // Unknown escape sequences are swallowed whole.
    fresh(&e, "a\x1b[99;9Zb\x1b[15~c");
    CHECK_TEXT(&e, "abc", 3);
    // Ctrl-T swaps.
    fresh(&e, "ab\x14");
    CHECK_TEXT(&e, "ba", 2);
    le_free(&e);
}

int main(void) {
    test_ascii();
    test_kill_and_words();
    test_wide_and_combining();
    test_layout();
    test_history();
    test_search();
    test_completion();
    test_multiline();
    test_actions();
    return test_result("test_lineedit");
}
