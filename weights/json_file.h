/* JSON documents for the checkpoint readers (safetensors headers, Hugging
 * Face config and tokenizer files), parsed strictly with json-c: the whole
 * text must be one JSON value in UTF-8, with nothing but whitespace after
 * it, and errors name the file and the byte where parsing stopped. Also the typed
 * field getters those readers share, which refuse a value of the wrong type
 * instead of converting it. */
#ifndef TANDEM_WEIGHTS_JSON_FILE_H
#define TANDEM_WEIGHTS_JSON_FILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

/* The value of text[0..len), or NULL with "name: ..." in err. The caller
 * releases it with json_object_put. */
json_object *json_parse_text(const char *name, const char *text, size_t len, char *err, size_t errlen);
/* The same for a whole file of at most max_bytes. */
json_object *json_read_file(const char *path, size_t max_bytes, char *err, size_t errlen);

/* obj[key]; NULL when obj is not an object, or key is absent or JSON null
 * (which Hugging Face files write for "use the default"). */
json_object *json_get(json_object *obj, const char *key);
/* obj[key] when it is a string, else NULL. */
const char *json_get_str(json_object *obj, const char *key);

/* An integer that fits in int64 (a JSON number without fraction or
 * exponent); false for anything else, including a number too large. */
bool json_int(const json_object *v, int64_t *out);
/* Any JSON number. */
bool json_number(const json_object *v, double *out);

#endif
