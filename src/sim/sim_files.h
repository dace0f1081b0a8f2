/*
 * sim_files — ComfyUI's file routes for comfysim: GET /view (with channel=rgb|a re-encoded
 * like Pillow does) and POST /upload/image, /upload/mask (multipart; dedup by content,
 * "name (1).png" renaming, overwrite, the mask's alpha copied onto original_ref).
 */
#ifndef SIM_FILES_H
#define SIM_FILES_H

#include "http/http_server.h"

void sim_files_view_cb(struct http_exchange *ex, void *arg);
void sim_files_upload_image_cb(struct http_exchange *ex, void *arg);
void sim_files_upload_mask_cb(struct http_exchange *ex, void *arg);

#endif
