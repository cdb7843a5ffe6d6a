/* model_files.h — model shapes from GGUF headers, for the CLI's commands
 * that read a workflow (validate, plan): a model resource needs only its
 * path; the shape (arch, layers, hidden, heads, kv_heads, vocab, context,
 * dtype) comes from the file's header when the file can be read here. A
 * declared value that contradicts the file is an error naming both. */
#ifndef LOOM_CLI_MODEL_FILES_H
#define LOOM_CLI_MODEL_FILES_H

#include "planner/value.h"
#include "planner/workflow.h"

/* For every model of wf with a path (relative to the workflow's
 * directory): reads the header, fills the shape fields the workflow left
 * out (wf is updated in place) and reports each contradiction into diags
 * at the model's line. A file that cannot be read is a warning on stderr
 * (unless quiet): workers may see files the CLI does not. Returns the
 * number of errors added. */
int loom_cli_models_from_files(loom_workflow_t *wf, int quiet, loom_diags_t *diags);

#endif
