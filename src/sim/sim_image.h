/*
 * sim_image — float32 tensors laid out like ComfyUI's, and the image operations the
 * model-free nodes perform on them.
 *
 * IMAGE is [batch, height, width, 3] (4 after JoinImageWithAlpha), MASK is
 * [batch, height, width], values in 0..1, all in float32 arithmetic exactly like torch/numpy
 * on CPU, so that SaveImage's
 * `(255. * x).clip(0, 255).astype(uint8)` truncation gives the same bytes a real server writes.
 * Tensors are reference counted (one thread owns a simulator; no atomics): the executor's
 * cache and downstream nodes share them instead of copying.
 *
 * sim_tensor_repr() reproduces torch's `str(tensor)` (precision 4, 80 columns, summarised
 * with "..." past 1000 elements), which real ComfyUI puts into execution_error.current_inputs.
 */
#ifndef SIM_IMAGE_H
#define SIM_IMAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sim/sim_buf.h"

#define SIM_TENSOR_MAX_DIMS 4

enum sim_image_err {
    SIM_IMAGE_OK = 0,
    SIM_IMAGE_ENOMEM = -1,  /* allocation failed */
    SIM_IMAGE_ETOOBIG = -2, /* more elements than the caller's limit */
    SIM_IMAGE_EINVAL = -3,  /* bad shape or argument */
};

struct sim_tensor {
    int refs;
    int ndim;
    int64_t shape[SIM_TENSOR_MAX_DIMS];
    size_t numel;
    float *data;
};

enum sim_scale_method {
    SIM_SCALE_NEAREST_EXACT,
    SIM_SCALE_BILINEAR,
    SIM_SCALE_AREA,
    SIM_SCALE_BICUBIC,
    SIM_SCALE_LANCZOS,
};

const char *sim_image_err_name(int err);
/* New zero-filled tensor (refs = 1); fails with ETOOBIG above max_numel elements. */
int sim_tensor_new(int ndim, const int64_t *shape, uint64_t max_numel, struct sim_tensor **out);
struct sim_tensor *sim_tensor_ref(struct sim_tensor *t);
void sim_tensor_unref(struct sim_tensor *t);
/* Appends torch's str(t), e.g. "tensor([[[[0.9294, 0.7961, 0.6627], ..." */
int sim_tensor_repr(const struct sim_tensor *t, struct sim_buf *out);

/* EmptyImage: [batch, h, w, 3] filled with the 0xRRGGBB color. */
int sim_image_empty(int64_t w, int64_t h, int64_t batch, int64_t color, uint64_t max_numel,
                    struct sim_tensor **out);
/* ImageInvert: 1.0 - x. */
int sim_image_invert(const struct sim_tensor *img, uint64_t max_numel, struct sim_tensor **out);
/* ImageScale's resize: w or h 0 keeps the aspect ratio; crop_center as crop == "center". */
int sim_image_scale(const struct sim_tensor *img, enum sim_scale_method m, int64_t w, int64_t h,
                    bool crop_center, uint64_t max_numel, struct sim_tensor **out);
/* Parses an upscale_method combo value; false if unknown. */
bool sim_scale_method_parse(const char *name, enum sim_scale_method *m);
/* One batch entry as 8-bit rows of shape[3] samples a pixel (RGB, or RGBA after
 * JoinImageWithAlpha): SaveImage's float-to-byte conversion. px holds h*w*shape[3] bytes. */
void sim_image_to_u8(const struct sim_tensor *img, int64_t index, uint8_t *px);
/* LoadImage: 8-bit pixels with `channels` samples (1..4) to an IMAGE [1, h, w, 3]. */
int sim_image_from_pixels(const uint8_t *px, uint32_t w, uint32_t h, int channels,
                          uint64_t max_numel, struct sim_tensor **out);
/* A MASK [1, h, w] from one 8-bit channel: x/255, inverted when invert (alpha masks). */
int sim_mask_from_channel(const uint8_t *px, uint32_t w, uint32_t h, int channels, int channel,
                          bool invert, uint64_t max_numel, struct sim_tensor **out);
/* A deterministic picture standing in for a VAE decode: [batch, h, w, 3] from a seed. */
int sim_image_pattern(int64_t w, int64_t h, int64_t batch, uint64_t seed, uint64_t max_numel,
                      struct sim_tensor **out);

/* ImageToMask: MASK [n, h, w] = image[:, :, :, channel]; EINVAL past the last channel. */
int sim_image_channel(const struct sim_tensor *img, int64_t channel, uint64_t max_numel,
                      struct sim_tensor **out);
/* JoinImageWithAlpha: [min(n, len(mask)), h, w, 4] of image[..., :3] and
 * 1 - resize_mask(mask) (bilinear to the image size), as nodes_compositing.py computes. */
int sim_image_join_alpha(const struct sim_tensor *img, const struct sim_tensor *mask,
                         uint64_t max_numel, struct sim_tensor **out);

#endif
