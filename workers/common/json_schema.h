/* json_schema.h — checking JSON values against a JSON Schema subset: the
 * keywords MCP tool input schemas and Loom's `schema:` steps use.
 *
 * Checked: type (one name or a list: object, array, string, number,
 * integer, boolean, null), properties, required, additionalProperties
 * (false or a schema), items, enum, const, minimum, maximum, minLength,
 * maxLength, minItems, maxItems, anyOf. Other keywords (description,
 * default, title, format, $schema, ...) are accepted and ignored. */
#ifndef LOOM_WORKERS_JSON_SCHEMA_H
#define LOOM_WORKERS_JSON_SCHEMA_H

#include <jansson.h>

#include "common/err.h"

/* 0 when value satisfies schema; else LOOM_EINVAL with the first
 * violation in err->msg ("$.items[2].price: expected number, got string")
 * and the path in err->field. */
int loom_json_schema_check(const json_t *schema, const json_t *value, loom_err_t *err);

#endif
