// Binary heap of merge candidates (see bigram_queue.h).
#include "vocab/bigram_queue.h"

#include <stdlib.h>

static bool before(const ll_bigram *x, const ll_bigram *y) {
    return x->priority > y->priority || (x->priority == y->priority && x->left < y->left);
}

bool ll_bigram_push(ll_bigram_queue *q, ll_bigram b) {
    if (q->n == q->cap) {
        int32_t cap = q->cap ? 2 * q->cap : 64;
        ll_bigram *a = realloc(q->a, (size_t)cap * sizeof(ll_bigram));
        if (!a) return false;
        q->a = a;
        q->cap = cap;
    }
    int32_t i = q->n++;
    while (i > 0 && before(&b, &q->a[(i - 1) / 2])) {
        q->a[i] = q->a[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    q->a[i] = b;
    return true;
}

ll_bigram ll_bigram_pop(ll_bigram_queue *q) {
    ll_bigram top = q->a[0], last = q->a[--q->n];
    int32_t i = 0;
    for (;;) {
        int32_t c = 2 * i + 1;
        if (c >= q->n) break;
        if (c + 1 < q->n && before(&q->a[c + 1], &q->a[c])) c++;
        if (!before(&q->a[c], &last)) break;
        q->a[i] = q->a[c];
        i = c;
    }
    if (q->n) q->a[i] = last;
    return top;
}

void ll_bigram_queue_free(ll_bigram_queue *q) {
    free(q->a);
    q->a = NULL;
    q->n = q->cap = 0;
}
