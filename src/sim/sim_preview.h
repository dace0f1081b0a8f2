/*
 * sim_preview — GET /view's `preview=<format>;<quality>` as ComfyUI 0.8.0 handles it
 * (I/O-less: the stored file's bytes in, the answer's bytes out).
 *
 * server.py view_image, when `preview` is in the query (it wins over `channel`):
 *   info = preview.split(';'); format = info[0]
 *   format is not "webp"/"jpeg", or 'a' is anywhere in `channel` (also "rgba")  -> "webp"
 *   quality = int(info[-1]) if info[-1].isdigit() else 90   (so "preview=80" is webp;80)
 *   jpeg, or channel == "rgb": img.convert("RGB")   (jpeg drops alpha; gray becomes RGB)
 *   img.save(buf, format, quality=quality); Content-Type image/<format>,
 *   Content-Disposition: filename="<name>"
 * and what Pillow 9.4 (the recording's) then does with the quality:
 *   jpeg: the int is passed as a C ssize_t (>= 2^63: OverflowError -> 500), cut to a C int,
 *         -1 means "libjpeg's default" (75), and libjpeg clamps the rest to 1..100;
 *   webp: more than 100 fails WebPValidateConfig (ValueError -> 500).
 * Only ASCII digits count as digits here (Python's isdigit() also accepts other Unicode
 * digits; int() then accepts some and raises on others).
 */
#ifndef SIM_PREVIEW_H
#define SIM_PREVIEW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sim/sim_buf.h"

enum sim_preview_format {
    SIM_PREVIEW_WEBP,
    SIM_PREVIEW_JPEG,
};

struct sim_preview {
    enum sim_preview_format format;
    bool quality_ok; /* false: Pillow raises for this quality, the answer is a 500 */
    int quality;     /* what the encoder gets: jpeg 1..100, webp 0..100 */
    bool rgb;        /* drop alpha (img.convert("RGB")) */
};

/* preview: the parameter's decoded value; channel: the channel parameter's, NULL if absent. */
void sim_preview_parse(const char *preview, const char *channel, struct sim_preview *out);

/* "image/webp" or "image/jpeg". */
const char *sim_preview_content_type(const struct sim_preview *p);

/*
 * Converts a stored file (comfysim decodes PNG only) as Pillow would. Returns 0 with the new
 * file appended to out, or the HTTP status to answer with: 400 when the picture has more than
 * max_pixels pixels (comfysim's own cap, so that one request cannot stall its reactor; real
 * ComfyUI converts up to Pillow's decompression-bomb limit), 500 where ComfyUI's handler
 * raises (a bad quality, a file Pillow cannot open, a size the format cannot hold) or memory
 * or out's maximum runs out.
 */
int sim_preview_convert(const struct sim_preview *p, const uint8_t *file, size_t len,
                        uint64_t max_pixels, struct sim_buf *out);

#endif
