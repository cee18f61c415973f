#include "corpus.h"

#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool push(struct corpus *c, int *cap, const char *s)
{
    if (c->n == *cap) {
        int grown_cap = *cap ? *cap * 2 : 64;
        char **grown = realloc(c->prompts, sizeof *grown * grown_cap);
        if (!grown)
            return false;
        c->prompts = grown;
        *cap = grown_cap;
    }
    return (c->prompts[c->n] = strdup(s)) != NULL && ++c->n;
}

/* Adds the prompts of one parsed line; NULL or what is wrong with it. */
static const char *add_line(struct corpus *c, int *cap, json_object *o)
{
    json_object *v;
    if (!json_object_is_type(o, json_type_object))
        return "not a JSON object";
    if (json_object_object_get_ex(o, "turns", &v)) {
        if (!json_object_is_type(v, json_type_array))
            return "\"turns\" is not a list";
        for (size_t i = 0; i < json_object_array_length(v); i++) {
            json_object *t = json_object_array_get_idx(v, i);
            if (!json_object_is_type(t, json_type_string))
                return "an entry of \"turns\" is not a string";
            if (!push(c, cap, json_object_get_string(t)))
                return "out of memory";
        }
        return NULL;
    }
    if (json_object_object_get_ex(o, "prompt", &v) || json_object_object_get_ex(o, "text", &v)) {
        if (!json_object_is_type(v, json_type_string))
            return "\"prompt\"/\"text\" is not a string";
        return push(c, cap, json_object_get_string(v)) ? NULL : "out of memory";
    }
    return "no \"turns\", \"prompt\" or \"text\" field";
}

bool corpus_read(const char *path, struct corpus *out, char *err, size_t errlen)
{
    *out = (struct corpus){0};
    FILE *fp = fopen(path, "r");
    if (!fp) {
        snprintf(err, errlen, "%s: cannot open", path);
        return false;
    }
    char *line = NULL;
    size_t line_cap = 0;
    int cap = 0, lineno = 0;
    const char *bad = NULL;
    while (!bad && getline(&line, &line_cap, fp) != -1) {
        lineno++;
        if (strspn(line, " \t\r\n") == strlen(line))
            continue;
        json_object *o = json_tokener_parse(line);
        bad = o ? add_line(out, &cap, o) : "not valid JSON";
        json_object_put(o);
    }
    free(line);
    fclose(fp);
    if (!bad && out->n == 0)
        snprintf(err, errlen, "%s: no prompts", path);
    else if (bad)
        snprintf(err, errlen, "%s: line %d: %s", path, lineno, bad);
    if (bad || out->n == 0) {
        corpus_free(out);
        return false;
    }
    return true;
}

void corpus_free(struct corpus *c)
{
    for (int i = 0; i < c->n; i++)
        free(c->prompts[i]);
    free(c->prompts);
    *c = (struct corpus){0};
}
