// c-rbtree: red-black tree of malloc'd nodes: random inserts, then lookups of inserted and random keys.
// arg 0: keys = 200000 (insertions; a repeated key is counted, not added)
// arg 1: lookups = 400000 (even ones replay the insert sequence, odd ones are random)
// arg 2: seed = 1
// Insert keys hv_rand(seed) >> 40 (24-bit keys: some repeat); lookups use a second stream
// started from seed + 1 for the random half. Checksum: hv_mix of the node count, the black
// height, the lookup hits, then every key and its count in order.
#include "hv.h"
#include "kernel.h"

struct node {
  struct node *left, *right, *parent;
  uint64_t key, count;
  bool red;
};

static struct node *root;

static void rotate(struct node *x, bool left) {
  struct node *y = left ? x->right : x->left;
  struct node *inner = left ? y->left : y->right;
  if (left) x->right = inner;
  else x->left = inner;
  if (inner) inner->parent = x;
  y->parent = x->parent;
  if (!x->parent) root = y;
  else if (x == x->parent->left) x->parent->left = y;
  else x->parent->right = y;
  if (left) y->left = x;
  else y->right = x;
  x->parent = y;
}

static bool insert(uint64_t key) {
  struct node *parent = NULL, **link = &root;
  while (*link) {
    parent = *link;
    if (key == parent->key) {
      parent->count++;
      return false;
    }
    link = key < parent->key ? &parent->left : &parent->right;
  }
  struct node *z = malloc(sizeof *z);
  if (!z) hv_panic("c-rbtree: out of memory");
  *z = (struct node){NULL, NULL, parent, key, 1, true};
  *link = z;
  while (z->parent && z->parent->red) {
    struct node *p = z->parent, *g = p->parent;
    bool pleft = p == g->left;
    struct node *uncle = pleft ? g->right : g->left;
    if (uncle && uncle->red) {
      p->red = uncle->red = false;
      g->red = true;
      z = g;
      continue;
    }
    if (z == (pleft ? p->right : p->left)) {
      z = p;
      rotate(z, pleft);
      p = z->parent;
    }
    p->red = false;
    g->red = true;
    rotate(g, !pleft);
  }
  root->red = false;
  return true;
}

static struct node *lookup(uint64_t key) {
  struct node *n = root;
  while (n && n->key != key) n = key < n->key ? n->left : n->right;
  return n;
}

/* Black height, checking the red-black rules on the way (panics on a violation). */
static unsigned check(struct node *n) {
  if (!n) return 1;
  if (n->red && ((n->left && n->left->red) || (n->right && n->right->red))) hv_panic("c-rbtree: red node %lu has a red child", n->key);
  unsigned l = check(n->left), r = check(n->right);
  if (l != r) hv_panic("c-rbtree: black heights %u and %u under %lu", l, r, n->key);
  return l + !n->red;
}

static uint64_t fold(struct node *n, uint64_t h) {
  if (!n) return h;
  h = fold(n->left, h);
  h = hv_mix(hv_mix(h, n->key), n->count);
  return fold(n->right, h);
}

int main(void) {
  uint64_t keys = hv_arg(0, 200000), lookups = hv_arg(1, 400000), seed = hv_arg(2, 1);
  uint64_t s = seed, nodes = 0, hits = 0;
  hv_roi_begin();
  for (uint64_t i = 0; i < keys; i++) nodes += insert(hv_rand(&s) >> 40);
  hv_roi_end();
  uint64_t replay = seed, other = seed + 1;
  hv_roi_begin();
  for (uint64_t i = 0; i < lookups; i++) hits += lookup(hv_rand(i & 1 ? &other : &replay) >> 40) != NULL;
  hv_roi_end();
  unsigned bh = check(root);
  uint64_t sum = fold(root, hv_mix(hv_mix(hv_mix(HV_CHECKSUM_INIT, nodes), bh), hits));
  printf("c-rbtree: keys %lu nodes %lu black-height %u lookups %lu hits %lu checksum 0x%016lx\n", keys, nodes, bh, lookups, hits, sum);
  return 0;
}
