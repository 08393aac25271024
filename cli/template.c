// llamalite template: prints the prompt a chat template makes of a conversation.
//
//   llamalite template [-m MODEL | --chat-template NAME] --messages FILE.json [--add-generation-prompt]
//
// FILE.json is an array of {"role": ..., "content": ...} (or an object with such a "messages"
// array, as /save writes). The model's tokenizer.chat_template picks the family, and its BOS/EOS
// token texts fill bos_token/eos_token; --chat-template NAME overrides (with the family's usual
// BOS/EOS when there is no model). The prompt goes to stdout exactly, with no newline added.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "args.h"
#include "commands.h"
#include "json.h"

static void usage(FILE *out) {
    fputs("usage: llamalite template [-m MODEL | --chat-template NAME] --messages FILE.json "
          "[--add-generation-prompt]\n"
          "Prints the prompt that the chat template makes of the messages (a JSON array of\n"
          "{\"role\", \"content\"} objects).\n\n"
          "options:\n"
          "  -m, --model FILE          take the template and BOS/EOS texts from this model\n"
          "  --chat-template NAME      use a built-in template (overrides the model's)\n"
          "  --messages FILE           the conversation (JSON)\n"
          "  --add-generation-prompt   end with the start of an assistant turn\n"
          "  --list                    print the built-in template names\n", out);
}

// Reads the messages of a conversation file; *msgs points into the returned json.
static json *load_messages(const char *path, ll_chat_msg **msgs, size_t *n) {
    size_t len = 0;
    char *text = args_read_file(path, &len);
    if (!text) return NULL;
    char err[256];
    json *j = json_parse(text, len, err, sizeof err);
    free(text);
    if (!j) {
        fprintf(stderr, "llamalite: %s: %s\n", path, err);
        return NULL;
    }
    const json *arr = j->type == JSON_OBJECT ? json_get(j, "messages") : j;
    if (!arr || arr->type != JSON_ARRAY) {
        fprintf(stderr, "llamalite: %s: expected an array of messages\n", path);
        json_free(j);
        return NULL;
    }
    *msgs = calloc(arr->n ? arr->n : 1, sizeof **msgs);
    if (!*msgs) {
        fputs("llamalite: out of memory\n", stderr);
        json_free(j);
        return NULL;
    }
    for (size_t i = 0; i < arr->n; i++) {
        const char *role = json_str(json_get(&arr->items[i], "role"));
        const char *content = json_str(json_get(&arr->items[i], "content"));
        const json *c = json_get(&arr->items[i], "content");
        if (!role || (!content && !(c && c->type == JSON_NULL))) {
            fprintf(stderr, "llamalite: %s: message %zu needs string \"role\" and \"content\"\n", path, i);
            free(*msgs);
            json_free(j);
            return NULL;
        }
        (*msgs)[i].role = role;
        (*msgs)[i].content = content ? content : "";
    }
    *n = arr->n;
    return j;
}

int cmd_template(int argc, char **argv) {
    const char *model_path = NULL, *name = NULL, *messages = NULL;
    bool add_ass = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(a, "--list")) {
            for (const char *const *n = ll_chat_template_names(); *n; n++) puts(*n);
            return 0;
        } else if (!strcmp(a, "-m") || !strcmp(a, "--model")) {
            if (!args_value(argc, argv, &i, &model_path)) return 1;
        } else if (!strcmp(a, "--chat-template")) {
            if (!args_value(argc, argv, &i, &name)) return 1;
        } else if (!strcmp(a, "--messages")) {
            if (!args_value(argc, argv, &i, &messages)) return 1;
        } else if (!strcmp(a, "--add-generation-prompt")) {
            add_ass = true;
        } else {
            args_unknown("template", a);
            return 1;
        }
    }
    if (!messages || (!model_path && !name)) {
        fputs("llamalite template: needs --messages FILE and -m MODEL or --chat-template NAME\n", stderr);
        return 1;
    }
    if (name && !ll_chat_detect(name)) {
        fprintf(stderr, "llamalite: unknown chat template '%s' (see 'llamalite template --list')\n", name);
        return 1;
    }

    ll_chat_msg *msgs = NULL;
    size_t n = 0;
    json *doc = load_messages(messages, &msgs, &n);
    if (!doc) return 1;

    int rc = 1;
    ll_model *model = NULL;
    const char *tmpl = name, *bos = NULL, *eos = NULL;
    if (model_path) {
        char err[512];
        ll_model_params mp = ll_model_default_params();
        mp.vocab_only = true;
        model = ll_model_load(model_path, &mp, err, sizeof err);
        if (!model) {
            fprintf(stderr, "llamalite: %s\n", err);
            goto done;
        }
        const ll_vocab *v = ll_model_get_vocab(model);
        if (ll_vocab_bos(v) >= 0) bos = ll_token_get_text(v, ll_vocab_bos(v));
        if (ll_vocab_eos(v) >= 0) eos = ll_token_get_text(v, ll_vocab_eos(v));
        if (!tmpl) {
            tmpl = ll_model_meta_str(model, "tokenizer.chat_template");
            if (!tmpl) {
                fprintf(stderr, "llamalite: %s has no chat template (use --chat-template NAME)\n", model_path);
                goto done;
            }
            if (!ll_chat_detect(tmpl)) {
                fprintf(stderr, "llamalite: the chat template of %s is not one llamalite knows "
                        "(use --chat-template NAME)\n", model_path);
                goto done;
            }
        }
    }
    char *out = NULL;
    int r = ll_chat_render(tmpl, msgs, n, add_ass, bos, eos, &out, NULL, NULL);
    if (r != 0) {
        fputs(r == -1 ? "llamalite: unknown chat template\n" : "llamalite: out of memory\n", stderr);
        goto done;
    }
    fputs(out, stdout);
    free(out);
    rc = 0; // main checks that stdout was written
done:
    ll_model_free(model);
    free(msgs);
    json_free(doc);
    return rc;
}
