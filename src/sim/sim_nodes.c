/*
 * sim_nodes — node class registry and /object_info, /models data (see sim_nodes.h).
 */
#include "sim/sim_nodes.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sim/sim_json.h"

struct node_def {
    const char *name;
    enum sim_node_kind kind;
    unsigned flags;
    const char *json;
};

/*
 * /object_info entries as ComfyUI 0.8.0 sends them. EmptyImage, ImageInvert, ImageScale,
 * LoadImage, LoadImageMask, SaveImage, PreviewImage, GetImageSize, KSampler and
 * CheckpointLoaderSimple are copied from transcript 11; the others follow the 0.8.0 sources.
 * InvertMask's V3 schema sets no display_name; we answer with the class name, as the V1
 * fallback and the frontend do.
 * Listed in NODE_CLASS_MAPPINGS order (nodes.py first, then comfy_extras), which is the order
 * /object_info answers in. "__U64_MAX__" stands for 2^64-1, which jansson cannot parse.
 */
static const struct node_def node_defs[] = {
    {"KSampler", SIM_NODE_KSAMPLER, 0,
     "{\"input\": {\"required\": {\"model\": [\"MODEL\", {\"tooltip\": \"The model used for "
     "denoising the input latent.\"}], \"seed\": [\"INT\", {\"default\": 0, \"min\": 0, \"ma"
     "x\": \"__U64_MAX__\", \"control_after_generate\": true, \"tooltip\": \"The random seed"
     " used for creating the noise.\"}], \"steps\": [\"INT\", {\"default\": 20, \"min\": 1, "
     "\"max\": 10000, \"tooltip\": \"The number of steps used in the denoising process.\"}],"
     " \"cfg\": [\"FLOAT\", {\"default\": 8.0, \"min\": 0.0, \"max\": 100.0, \"step\": 0.1, "
     "\"round\": 0.01, \"tooltip\": \"The Classifier-Free Guidance scale balances creativity"
     " and adherence to the prompt. Higher values result in images more closely matching the"
     " prompt however too high values will negatively impact quality.\"}], \"sampler_name\":"
     " [[\"euler\", \"euler_cfg_pp\", \"euler_ancestral\", \"euler_ancestral_cfg_pp\", \"heu"
     "n\", \"heunpp2\", \"exp_heun_2_x0\", \"exp_heun_2_x0_sde\", \"dpm_2\", \"dpm_2_ancestr"
     "al\", \"lms\", \"dpm_fast\", \"dpm_adaptive\", \"dpmpp_2s_ancestral\", \"dpmpp_2s_ance"
     "stral_cfg_pp\", \"dpmpp_sde\", \"dpmpp_sde_gpu\", \"dpmpp_2m\", \"dpmpp_2m_cfg_pp\", "
     "\"dpmpp_2m_sde\", \"dpmpp_2m_sde_gpu\", \"dpmpp_2m_sde_heun\", \"dpmpp_2m_sde_heun_gpu"
     "\", \"dpmpp_3m_sde\", \"dpmpp_3m_sde_gpu\", \"ddpm\", \"lcm\", \"ipndm\", \"ipndm_v\","
     " \"deis\", \"res_multistep\", \"res_multistep_cfg_pp\", \"res_multistep_ancestral\", "
     "\"res_multistep_ancestral_cfg_pp\", \"gradient_estimation\", \"gradient_estimation_cfg"
     "_pp\", \"er_sde\", \"seeds_2\", \"seeds_3\", \"sa_solver\", \"sa_solver_pece\", \"ddim"
     "\", \"uni_pc\", \"uni_pc_bh2\"], {\"tooltip\": \"The algorithm used when sampling, thi"
     "s can affect the quality, speed, and style of the generated output.\"}], \"scheduler\""
     ": [[\"simple\", \"sgm_uniform\", \"karras\", \"exponential\", \"ddim_uniform\", \"beta"
     "\", \"normal\", \"linear_quadratic\", \"kl_optimal\"], {\"tooltip\": \"The scheduler c"
     "ontrols how noise is gradually removed to form the image.\"}], \"positive\": [\"CONDIT"
     "IONING\", {\"tooltip\": \"The conditioning describing the attributes you want to inclu"
     "de in the image.\"}], \"negative\": [\"CONDITIONING\", {\"tooltip\": \"The conditionin"
     "g describing the attributes you want to exclude from the image.\"}], \"latent_image\":"
     " [\"LATENT\", {\"tooltip\": \"The latent image to denoise.\"}], \"denoise\": [\"FLOAT"
     "\", {\"default\": 1.0, \"min\": 0.0, \"max\": 1.0, \"step\": 0.01, \"tooltip\": \"The "
     "amount of denoising applied, lower values will maintain the structure of the initial i"
     "mage allowing for image to image sampling.\"}]}}, \"input_order\": {\"required\": [\"m"
     "odel\", \"seed\", \"steps\", \"cfg\", \"sampler_name\", \"scheduler\", \"positive\", "
     "\"negative\", \"latent_image\", \"denoise\"]}, \"output\": [\"LATENT\"], \"output_is_l"
     "ist\": [false], \"output_name\": [\"LATENT\"], \"name\": \"KSampler\", \"display_name"
     "\": \"KSampler\", \"description\": \"Uses the provided model, positive and negative co"
     "nditioning to denoise the latent image.\", \"python_module\": \"nodes\", \"category\":"
     " \"sampling\", \"output_node\": false, \"output_tooltips\": [\"The denoised latent.\"]"
     "}"},
    {"CheckpointLoaderSimple", SIM_NODE_CHECKPOINT_LOADER, 0,
     "{\"input\": {\"required\": {\"ckpt_name\": [[], {\"tooltip\": \"The name of the checkp"
     "oint (model) to load.\"}]}}, \"input_order\": {\"required\": [\"ckpt_name\"]}, \"outpu"
     "t\": [\"MODEL\", \"CLIP\", \"VAE\"], \"output_is_list\": [false, false, false], \"outp"
     "ut_name\": [\"MODEL\", \"CLIP\", \"VAE\"], \"name\": \"CheckpointLoaderSimple\", \"dis"
     "play_name\": \"Load Checkpoint\", \"description\": \"Loads a diffusion model checkpoin"
     "t, diffusion models are used to denoise latents.\", \"python_module\": \"nodes\", \"ca"
     "tegory\": \"loaders\", \"output_node\": false, \"output_tooltips\": [\"The model used "
     "for denoising latents.\", \"The CLIP model used for encoding text prompts.\", \"The VA"
     "E model used for encoding and decoding images to and from latent space.\"]}"},
    {"CLIPTextEncode", SIM_NODE_CLIP_TEXT_ENCODE, 0,
     "{\"input\": {\"required\": {\"text\": [\"STRING\", {\"multiline\": true, \"dynamicProm"
     "pts\": true, \"tooltip\": \"The text to be encoded.\"}], \"clip\": [\"CLIP\", {\"toolt"
     "ip\": \"The CLIP model used for encoding the text.\"}]}}, \"input_order\": {\"required"
     "\": [\"text\", \"clip\"]}, \"output\": [\"CONDITIONING\"], \"output_is_list\": [false]"
     ", \"output_name\": [\"CONDITIONING\"], \"name\": \"CLIPTextEncode\", \"display_name\":"
     " \"CLIP Text Encode (Prompt)\", \"description\": \"Encodes a text prompt using a CLIP "
     "model into an embedding that can be used to guide the diffusion model towards generati"
     "ng specific images.\", \"python_module\": \"nodes\", \"category\": \"conditioning\", "
     "\"output_node\": false, \"output_tooltips\": [\"A conditioning containing the embedded"
     " text used to guide the diffusion model.\"]}"},
    {"VAEDecode", SIM_NODE_VAE_DECODE, 0,
     "{\"input\": {\"required\": {\"samples\": [\"LATENT\", {\"tooltip\": \"The latent to be"
     " decoded.\"}], \"vae\": [\"VAE\", {\"tooltip\": \"The VAE model used for decoding the "
     "latent.\"}]}}, \"input_order\": {\"required\": [\"samples\", \"vae\"]}, \"output\": ["
     "\"IMAGE\"], \"output_is_list\": [false], \"output_name\": [\"IMAGE\"], \"name\": \"VAE"
     "Decode\", \"display_name\": \"VAE Decode\", \"description\": \"Decodes latent images b"
     "ack into pixel space images.\", \"python_module\": \"nodes\", \"category\": \"latent\""
     ", \"output_node\": false, \"output_tooltips\": [\"The decoded image.\"]}"},
    {"EmptyLatentImage", SIM_NODE_EMPTY_LATENT, 0,
     "{\"input\": {\"required\": {\"width\": [\"INT\", {\"default\": 512, \"min\": 16, \"max"
     "\": 16384, \"step\": 8, \"tooltip\": \"The width of the latent images in pixels.\"}], "
     "\"height\": [\"INT\", {\"default\": 512, \"min\": 16, \"max\": 16384, \"step\": 8, \"t"
     "ooltip\": \"The height of the latent images in pixels.\"}], \"batch_size\": [\"INT\", "
     "{\"default\": 1, \"min\": 1, \"max\": 4096, \"tooltip\": \"The number of latent images"
     " in the batch.\"}]}}, \"input_order\": {\"required\": [\"width\", \"height\", \"batch_"
     "size\"]}, \"output\": [\"LATENT\"], \"output_is_list\": [false], \"output_name\": [\"L"
     "ATENT\"], \"name\": \"EmptyLatentImage\", \"display_name\": \"Empty Latent Image\", \""
     "description\": \"Create a new batch of empty latent images to be denoised via sampling"
     ".\", \"python_module\": \"nodes\", \"category\": \"latent\", \"output_node\": false, "
     "\"output_tooltips\": [\"The empty latent image batch.\"]}"},
    {"SaveImage", SIM_NODE_SAVE_IMAGE, 0,
     "{\"input\": {\"required\": {\"images\": [\"IMAGE\", {\"tooltip\": \"The images to save"
     ".\"}], \"filename_prefix\": [\"STRING\", {\"default\": \"ComfyUI\", \"tooltip\": \"The"
     " prefix for the file to save. This may include formatting information such as %date:yy"
     "yy-MM-dd% or %Empty Latent Image.width% to include values from nodes.\"}]}, \"hidden\""
     ": {\"prompt\": \"PROMPT\", \"extra_pnginfo\": \"EXTRA_PNGINFO\"}}, \"input_order\": {"
     "\"required\": [\"images\", \"filename_prefix\"], \"hidden\": [\"prompt\", \"extra_pngi"
     "nfo\"]}, \"output\": [], \"output_is_list\": [], \"output_name\": [], \"name\": \"Save"
     "Image\", \"display_name\": \"Save Image\", \"description\": \"Saves the input images t"
     "o your ComfyUI output directory.\", \"python_module\": \"nodes\", \"category\": \"imag"
     "e\", \"output_node\": true}"},
    {"PreviewImage", SIM_NODE_PREVIEW_IMAGE, 0,
     "{\"input\": {\"required\": {\"images\": [\"IMAGE\"]}, \"hidden\": {\"prompt\": \"PROMP"
     "T\", \"extra_pnginfo\": \"EXTRA_PNGINFO\"}}, \"input_order\": {\"required\": [\"images"
     "\"], \"hidden\": [\"prompt\", \"extra_pnginfo\"]}, \"output\": [], \"output_is_list\":"
     " [], \"output_name\": [], \"name\": \"PreviewImage\", \"display_name\": \"Preview Imag"
     "e\", \"description\": \"Saves the input images to your ComfyUI output directory.\", \""
     "python_module\": \"nodes\", \"category\": \"image\", \"output_node\": true}"},
    {"LoadImage", SIM_NODE_LOAD_IMAGE, SIM_NODE_F_FILE_INPUT,
     "{\"input\": {\"required\": {\"image\": [[], {\"image_upload\": true}]}}, \"input_order"
     "\": {\"required\": [\"image\"]}, \"output\": [\"IMAGE\", \"MASK\"], \"output_is_list\""
     ": [false, false], \"output_name\": [\"IMAGE\", \"MASK\"], \"name\": \"LoadImage\", \"d"
     "isplay_name\": \"Load Image\", \"description\": \"\", \"python_module\": \"nodes\", \""
     "category\": \"image\", \"output_node\": false}"},
    {"LoadImageMask", SIM_NODE_LOAD_IMAGE_MASK, SIM_NODE_F_FILE_INPUT,
     "{\"input\": {\"required\": {\"image\": [[], {\"image_upload\": true}], \"channel\": [["
     "\"alpha\", \"red\", \"green\", \"blue\"]]}}, \"input_order\": {\"required\": [\"image"
     "\", \"channel\"]}, \"output\": [\"MASK\"], \"output_is_list\": [false], \"output_name"
     "\": [\"MASK\"], \"name\": \"LoadImageMask\", \"display_name\": \"Load Image (as Mask)"
     "\", \"description\": \"\", \"python_module\": \"nodes\", \"category\": \"mask\", \"out"
     "put_node\": false}"},
    {"ImageScale", SIM_NODE_IMAGE_SCALE, 0,
     "{\"input\": {\"required\": {\"image\": [\"IMAGE\"], \"upscale_method\": [[\"nearest-ex"
     "act\", \"bilinear\", \"area\", \"bicubic\", \"lanczos\"]], \"width\": [\"INT\", {\"def"
     "ault\": 512, \"min\": 0, \"max\": 16384, \"step\": 1}], \"height\": [\"INT\", {\"defau"
     "lt\": 512, \"min\": 0, \"max\": 16384, \"step\": 1}], \"crop\": [[\"disabled\", \"cent"
     "er\"]]}}, \"input_order\": {\"required\": [\"image\", \"upscale_method\", \"width\", "
     "\"height\", \"crop\"]}, \"output\": [\"IMAGE\"], \"output_is_list\": [false], \"output"
     "_name\": [\"IMAGE\"], \"name\": \"ImageScale\", \"display_name\": \"Upscale Image\", "
     "\"description\": \"\", \"python_module\": \"nodes\", \"category\": \"image/upscaling\""
     ", \"output_node\": false}"},
    {"ImageInvert", SIM_NODE_IMAGE_INVERT, 0,
     "{\"input\": {\"required\": {\"image\": [\"IMAGE\"]}}, \"input_order\": {\"required\": "
     "[\"image\"]}, \"output\": [\"IMAGE\"], \"output_is_list\": [false], \"output_name\": ["
     "\"IMAGE\"], \"name\": \"ImageInvert\", \"display_name\": \"Invert Image\", \"descripti"
     "on\": \"\", \"python_module\": \"nodes\", \"category\": \"image\", \"output_node\": fa"
     "lse}"},
    {"EmptyImage", SIM_NODE_EMPTY_IMAGE, 0,
     "{\"input\": {\"required\": {\"width\": [\"INT\", {\"default\": 512, \"min\": 1, \"max"
     "\": 16384, \"step\": 1}], \"height\": [\"INT\", {\"default\": 512, \"min\": 1, \"max\""
     ": 16384, \"step\": 1}], \"batch_size\": [\"INT\", {\"default\": 1, \"min\": 1, \"max\""
     ": 4096}], \"color\": [\"INT\", {\"default\": 0, \"min\": 0, \"max\": 16777215, \"step"
     "\": 1, \"display\": \"color\"}]}}, \"input_order\": {\"required\": [\"width\", \"heigh"
     "t\", \"batch_size\", \"color\"]}, \"output\": [\"IMAGE\"], \"output_is_list\": [false]"
     ", \"output_name\": [\"IMAGE\"], \"name\": \"EmptyImage\", \"display_name\": \"EmptyIma"
     "ge\", \"description\": \"\", \"python_module\": \"nodes\", \"category\": \"image\", \""
     "output_node\": false}"},
    {"LoraLoader", SIM_NODE_LORA_LOADER, 0,
     "{\"input\": {\"required\": {\"model\": [\"MODEL\", {\"tooltip\": \"The diffusion model"
     " the LoRA will be applied to.\"}], \"clip\": [\"CLIP\", {\"tooltip\": \"The CLIP model"
     " the LoRA will be applied to.\"}], \"lora_name\": [[], {\"tooltip\": \"The name of the"
     " LoRA.\"}], \"strength_model\": [\"FLOAT\", {\"default\": 1.0, \"min\": -100.0, \"max"
     "\": 100.0, \"step\": 0.01, \"tooltip\": \"How strongly to modify the diffusion model. "
     "This value can be negative.\"}], \"strength_clip\": [\"FLOAT\", {\"default\": 1.0, \"m"
     "in\": -100.0, \"max\": 100.0, \"step\": 0.01, \"tooltip\": \"How strongly to modify th"
     "e CLIP model. This value can be negative.\"}]}}, \"input_order\": {\"required\": [\"mo"
     "del\", \"clip\", \"lora_name\", \"strength_model\", \"strength_clip\"]}, \"output\": ["
     "\"MODEL\", \"CLIP\"], \"output_is_list\": [false, false], \"output_name\": [\"MODEL\","
     " \"CLIP\"], \"name\": \"LoraLoader\", \"display_name\": \"Load LoRA\", \"description\""
     ": \"LoRAs are used to modify diffusion and CLIP models, altering the way in which late"
     "nts are denoised such as applying styles. Multiple LoRA nodes can be linked together."
     "\", \"python_module\": \"nodes\", \"category\": \"loaders\", \"output_node\": false, "
     "\"output_tooltips\": [\"The modified diffusion model.\", \"The modified CLIP model.\"]"
     "}"},
    {"UpscaleModelLoader", SIM_NODE_UPSCALE_MODEL_LOADER, SIM_NODE_F_V3,
     "{\"input\": {\"required\": {\"model_name\": [\"COMBO\", {\"multiselect\": false, \"opt"
     "ions\": []}]}}, \"input_order\": {\"required\": [\"model_name\"]}, \"output\": [\"UPSC"
     "ALE_MODEL\"], \"output_is_list\": [false], \"output_name\": [\"UPSCALE_MODEL\"], \"out"
     "put_tooltips\": [null], \"output_matchtypes\": null, \"name\": \"UpscaleModelLoader\","
     " \"display_name\": \"Load Upscale Model\", \"description\": \"\", \"python_module\": "
     "\"comfy_extras.nodes_upscale_model\", \"category\": \"loaders\", \"output_node\": fals"
     "e, \"deprecated\": false, \"experimental\": false, \"api_node\": false}"},
    {"ImageUpscaleWithModel", SIM_NODE_IMAGE_UPSCALE_WITH_MODEL, SIM_NODE_F_V3,
     "{\"input\": {\"required\": {\"upscale_model\": [\"UPSCALE_MODEL\", {}], \"image\": [\""
     "IMAGE\", {}]}}, \"input_order\": {\"required\": [\"upscale_model\", \"image\"]}, \"out"
     "put\": [\"IMAGE\"], \"output_is_list\": [false], \"output_name\": [\"IMAGE\"], \"outpu"
     "t_tooltips\": [null], \"output_matchtypes\": null, \"name\": \"ImageUpscaleWithModel\""
     ", \"display_name\": \"Upscale Image (using Model)\", \"description\": \"\", \"python_m"
     "odule\": \"comfy_extras.nodes_upscale_model\", \"category\": \"image/upscaling\", \"ou"
     "tput_node\": false, \"deprecated\": false, \"experimental\": false, \"api_node\": fals"
     "e}"},
    {"MaskToImage", SIM_NODE_MASK_TO_IMAGE, SIM_NODE_F_V3,
     "{\"input\": {\"required\": {\"mask\": [\"MASK\", {}]}}, \"input_order\": {\"required\""
     ": [\"mask\"]}, \"output\": [\"IMAGE\"], \"output_is_list\": [false], \"output_name\": "
     "[\"IMAGE\"], \"output_tooltips\": [null], \"output_matchtypes\": null, \"name\": \"Mas"
     "kToImage\", \"display_name\": \"Convert Mask to Image\", \"description\": \"\", \"pyth"
     "on_module\": \"comfy_extras.nodes_mask\", \"category\": \"mask\", \"output_node\": fal"
     "se, \"deprecated\": false, \"experimental\": false, \"api_node\": false}"},
    {"ImageToMask", SIM_NODE_IMAGE_TO_MASK, SIM_NODE_F_V3,
     "{\"input\": {\"required\": {\"image\": [\"IMAGE\", {}], \"channel\": [\"COMBO\", {\"mult"
     "iselect\": false, \"options\": [\"red\", \"green\", \"blue\", \"alpha\"]}]}}, \"input_or"
     "der\": {\"required\": [\"image\", \"channel\"]}, \"output\": [\"MASK\"], \"output_is_lis"
     "t\": [false], \"output_name\": [\"MASK\"], \"output_tooltips\": [null], \"output_matchty"
     "pes\": null, \"name\": \"ImageToMask\", \"display_name\": \"Convert Image to Mask\", \"d"
     "escription\": \"\", \"python_module\": \"comfy_extras.nodes_mask\", \"category\": \"mask"
     "\", \"output_node\": false, \"deprecated\": false, \"experimental\": false, \"api_node\""
     ": false}"},
    {"InvertMask", SIM_NODE_INVERT_MASK, SIM_NODE_F_V3,
     "{\"input\": {\"required\": {\"mask\": [\"MASK\", {}]}}, \"input_order\": {\"required\": "
     "[\"mask\"]}, \"output\": [\"MASK\"], \"output_is_list\": [false], \"output_name\": [\"MA"
     "SK\"], \"output_tooltips\": [null], \"output_matchtypes\": null, \"name\": \"InvertMask"
     "\", \"display_name\": \"InvertMask\", \"description\": \"\", \"python_module\": \"comfy_"
     "extras.nodes_mask\", \"category\": \"mask\", \"output_node\": false, \"deprecated\": fal"
     "se, \"experimental\": false, \"api_node\": false}"},
    {"JoinImageWithAlpha", SIM_NODE_JOIN_IMAGE_WITH_ALPHA, SIM_NODE_F_V3,
     "{\"input\": {\"required\": {\"image\": [\"IMAGE\", {}], \"alpha\": [\"MASK\", {}]}}, \"i"
     "nput_order\": {\"required\": [\"image\", \"alpha\"]}, \"output\": [\"IMAGE\"], \"output_"
     "is_list\": [false], \"output_name\": [\"IMAGE\"], \"output_tooltips\": [null], \"output_"
     "matchtypes\": null, \"name\": \"JoinImageWithAlpha\", \"display_name\": \"Join Image wit"
     "h Alpha\", \"description\": \"\", \"python_module\": \"comfy_extras.nodes_compositing\","
     " \"category\": \"mask/compositing\", \"output_node\": false, \"deprecated\": false, \"ex"
     "perimental\": false, \"api_node\": false}"},
    {"GetImageSize", SIM_NODE_GET_IMAGE_SIZE, SIM_NODE_F_V3 | SIM_NODE_F_SIG_UNIQUE_ID,
     "{\"input\": {\"required\": {\"image\": [\"IMAGE\", {}]}, \"hidden\": {\"unique_id\": ["
     "\"UNIQUE_ID\"]}}, \"input_order\": {\"required\": [\"image\"], \"hidden\": [\"unique_i"
     "d\"]}, \"output\": [\"INT\", \"INT\", \"INT\"], \"output_is_list\": [false, false, fal"
     "se], \"output_name\": [\"width\", \"height\", \"batch_size\"], \"output_tooltips\": [n"
     "ull, null, null], \"output_matchtypes\": null, \"name\": \"GetImageSize\", \"display_n"
     "ame\": \"Get Image Size\", \"description\": \"Returns width and height of the image, a"
     "nd passes it through unchanged.\", \"python_module\": \"comfy_extras.nodes_images\", "
     "\"category\": \"image\", \"output_node\": false, \"deprecated\": false, \"experimental"
     "\": false, \"api_node\": false}"},
    {"PreviewAny", SIM_NODE_PREVIEW_ANY, 0,
     "{\"input\": {\"required\": {\"source\": [\"*\", {}]}}, \"input_order\": {\"required\":"
     " [\"source\"]}, \"output\": [], \"output_is_list\": [], \"output_name\": [], \"name\":"
     " \"PreviewAny\", \"display_name\": \"Preview Any\", \"description\": \"\", \"python_mo"
     "dule\": \"comfy_extras.nodes_preview_any\", \"category\": \"utils\", \"output_node\": "
     "true}"},
};

/* folder_paths.folder_names_and_paths keys, in the order GET /models lists them. */
static const char *const model_folders[] = {
    "checkpoints",  "configs",        "loras",
    "vae",          "text_encoders",  "diffusion_models",
    "clip_vision",  "style_models",   "embeddings",
    "diffusers",    "vae_approx",     "controlnet",
    "gligen",       "upscale_models", "latent_upscale_models",
    "custom_nodes", "hypernetworks",  "photomaker",
    "classifiers",  "model_patches",  "audio_encoders",
};

#define N_MODEL_FOLDERS (sizeof(model_folders) / sizeof(model_folders[0]))
#define N_NODE_DEFS (sizeof(node_defs) / sizeof(node_defs[0]))

struct sim_nodes {
    struct sim_node_class classes[SIM_NODES_MAX];
    size_t n;
    json_t *models; /* {folder: [sorted unique names]} for every folder */
};

const char *sim_nodes_err_name(int err)
{
    switch (err) {
    case SIM_NODES_OK:
        return "ok";
    case SIM_NODES_ENOMEM:
        return "out of memory";
    case SIM_NODES_ECLASS:
        return "unknown node class";
    case SIM_NODES_EFOLDER:
        return "unknown model folder";
    case SIM_NODES_ETOOMANY:
        return "too many entries";
    case SIM_NODES_ESYNTAX:
        return "malformed models spec";
    default:
        return "unknown";
    }
}

static int cmp_json_str(const void *a, const void *b)
{
    return strcmp(json_string_value(*(json_t *const *)a), json_string_value(*(json_t *const *)b));
}

/* Sorts a JSON array of strings and drops duplicates (get_filename_list's sorted(set())). */
static int sort_unique(json_t *arr)
{
    size_t n = json_array_size(arr);
    json_t **v = malloc((n + 1) * sizeof(*v));
    if (v == NULL)
        return SIM_NODES_ENOMEM;
    for (size_t i = 0; i < n; i++)
        v[i] = json_incref(json_array_get(arr, i));
    qsort(v, n, sizeof(*v), cmp_json_str);
    json_array_clear(arr);
    int rc = SIM_NODES_OK;
    for (size_t i = 0; i < n; i++) {
        if (rc == SIM_NODES_OK && (i == 0 || cmp_json_str(&v[i - 1], &v[i]) != 0) &&
            json_array_append(arr, v[i]) != 0)
            rc = SIM_NODES_ENOMEM;
        json_decref(v[i]);
    }
    free(v);
    return rc;
}

static int add_model_files(json_t *models, const char *folder, size_t flen, const char *files,
                           char *err_msg, size_t err_cap)
{
    char name[SIM_MODEL_NAME_MAX];
    if (flen >= sizeof(name))
        return SIM_NODES_ESYNTAX;
    memcpy(name, folder, flen);
    name[flen] = 0;
    json_t *list = json_object_get(models, name);
    if (list == NULL) {
        snprintf(err_msg, err_cap, "unknown model folder '%s'", name);
        return SIM_NODES_EFOLDER;
    }
    for (const char *p = files; *p && *p != ';';) {
        size_t len = strcspn(p, ",;");
        if (len >= sizeof(name))
            return SIM_NODES_ESYNTAX;
        if (json_array_size(list) >= SIM_MODEL_FILES_MAX)
            return SIM_NODES_ETOOMANY;
        if (len > 0 && json_array_append_new(list, json_stringn(p, len)) != 0)
            return SIM_NODES_ENOMEM;
        p += len;
        if (*p == ',')
            p++;
    }
    return SIM_NODES_OK;
}

static int parse_models(struct sim_nodes *nodes, const char *spec, char *err_msg, size_t err_cap)
{
    nodes->models = json_object();
    if (nodes->models == NULL)
        return SIM_NODES_ENOMEM;
    for (size_t i = 0; i < N_MODEL_FOLDERS; i++) {
        if (json_object_set_new(nodes->models, model_folders[i], json_array()) != 0)
            return SIM_NODES_ENOMEM;
    }
    for (const char *p = spec != NULL ? spec : ""; *p;) {
        const char *eq = strchr(p, '='), *end = p + strcspn(p, ";");
        if (eq == NULL || eq > end) {
            snprintf(err_msg, err_cap, "models spec needs folder=files near '%.32s'", p);
            return SIM_NODES_ESYNTAX;
        }
        int rc = add_model_files(nodes->models, p, (size_t)(eq - p), eq + 1, err_msg, err_cap);
        if (rc != SIM_NODES_OK)
            return rc;
        p = *end ? end + 1 : end;
    }
    const char *key;
    json_t *list;
    json_object_foreach(nodes->models, key, list)
    {
        if (sort_unique(list) != SIM_NODES_OK)
            return SIM_NODES_ENOMEM;
    }
    return SIM_NODES_OK;
}

/* Puts the configured model files into the class's combo (V1 list or V3 "options"). */
static int fill_model_combo(struct sim_nodes *nodes, struct sim_node_class *c)
{
    static const struct {
        enum sim_node_kind kind;
        const char *input;
        const char *folder;
    } combos[] = {{SIM_NODE_CHECKPOINT_LOADER, "ckpt_name", "checkpoints"},
                  {SIM_NODE_LORA_LOADER, "lora_name", "loras"},
                  {SIM_NODE_UPSCALE_MODEL_LOADER, "model_name", "upscale_models"}};
    for (size_t i = 0; i < sizeof(combos) / sizeof(combos[0]); i++) {
        if (combos[i].kind != c->kind)
            continue;
        json_t *spec = sim_node_input(c, combos[i].input, NULL);
        json_t *files = json_deep_copy(json_object_get(nodes->models, combos[i].folder));
        if (spec == NULL || files == NULL)
            return SIM_NODES_ENOMEM;
        if (json_is_string(json_array_get(spec, 0)))
            return json_object_set_new(json_array_get(spec, 1), "options", files) == 0
                       ? SIM_NODES_OK
                       : SIM_NODES_ENOMEM;
        return json_array_set_new(spec, 0, files) == 0 ? SIM_NODES_OK : SIM_NODES_ENOMEM;
    }
    return SIM_NODES_OK;
}

static int load_class(struct sim_nodes *nodes, const struct node_def *def)
{
    struct sim_node_class *c = &nodes->classes[nodes->n];
    json_error_t jerr;
    c->info = json_loads(def->json, 0, &jerr);
    if (c->info == NULL)
        return SIM_NODES_ENOMEM;
    nodes->n++;
    snprintf(c->name, sizeof(c->name), "%s", def->name);
    c->kind = def->kind;
    c->flags = def->flags;
    if (json_is_true(json_object_get(c->info, "output_node")))
        c->flags |= SIM_NODE_F_OUTPUT;
    if (c->kind == SIM_NODE_KSAMPLER) {
        json_t *seed = json_array_get(sim_node_input(c, "seed", NULL), 1);
        if (json_object_set_new(seed, "max", sim_json_rawnum("18446744073709551615")) != 0)
            return SIM_NODES_ENOMEM;
    }
    return fill_model_combo(nodes, c);
}

/* True if name appears in the comma-separated list (NULL/"" means every class). */
static bool class_wanted(const char *list, const char *name)
{
    if (list == NULL || *list == 0)
        return true;
    size_t n = strlen(name);
    for (const char *p = list; *p;) {
        size_t len = strcspn(p, ",");
        if (len == n && strncmp(p, name, n) == 0)
            return true;
        p += len;
        if (*p == ',')
            p++;
    }
    return false;
}

static int check_class_list(const char *list, char *err_msg, size_t err_cap)
{
    for (const char *p = list != NULL ? list : ""; *p;) {
        size_t len = strcspn(p, ",");
        bool known = false;
        for (size_t i = 0; i < N_NODE_DEFS && len > 0; i++)
            known |= strlen(node_defs[i].name) == len && strncmp(p, node_defs[i].name, len) == 0;
        if (len > 0 && !known) {
            snprintf(err_msg, err_cap, "unknown node class '%.*s'", (int)(len > 64 ? 64 : len), p);
            return SIM_NODES_ECLASS;
        }
        p += len;
        if (*p == ',')
            p++;
    }
    return SIM_NODES_OK;
}

int sim_nodes_create(const struct sim_nodes_config *cfg, struct sim_nodes **out, char *err_msg,
                     size_t err_cap)
{
    *out = NULL;
    if (err_cap > 0)
        err_msg[0] = 0;
    int rc = check_class_list(cfg->classes, err_msg, err_cap);
    if (rc != SIM_NODES_OK)
        return rc;
    struct sim_nodes *nodes = calloc(1, sizeof(*nodes));
    if (nodes == NULL)
        return SIM_NODES_ENOMEM;
    rc = parse_models(nodes, cfg->models, err_msg, err_cap);
    for (size_t i = 0; rc == SIM_NODES_OK && i < N_NODE_DEFS; i++) {
        if (!class_wanted(cfg->classes, node_defs[i].name))
            continue;
        rc = nodes->n < SIM_NODES_MAX ? load_class(nodes, &node_defs[i]) : SIM_NODES_ETOOMANY;
    }
    if (rc != SIM_NODES_OK) {
        sim_nodes_destroy(nodes);
        return rc;
    }
    *out = nodes;
    return SIM_NODES_OK;
}

void sim_nodes_destroy(struct sim_nodes *nodes)
{
    if (nodes == NULL)
        return;
    for (size_t i = 0; i < nodes->n; i++)
        json_decref(nodes->classes[i].info);
    json_decref(nodes->models);
    free(nodes);
}

const struct sim_node_class *sim_nodes_find(const struct sim_nodes *nodes, const char *name)
{
    for (size_t i = 0; i < nodes->n; i++) {
        if (strcmp(nodes->classes[i].name, name) == 0)
            return &nodes->classes[i];
    }
    return NULL;
}

size_t sim_nodes_count(const struct sim_nodes *nodes)
{
    return nodes->n;
}

const struct sim_node_class *sim_nodes_at(const struct sim_nodes *nodes, size_t i)
{
    return i < nodes->n ? &nodes->classes[i] : NULL;
}

struct input_listing {
    json_t *names;
    int err;
};

static void input_name_cb(void *arg, const char *name, bool is_dir)
{
    struct input_listing *l = arg;
    if (is_dir || !sim_fs_is_image_name(name) || l->err != 0)
        return;
    if (json_array_size(l->names) >= SIM_INPUT_FILES_MAX)
        return; /* a listing that large is truncated rather than refused */
    if (json_array_append_new(l->names, json_string(name)) != 0)
        l->err = SIM_NODES_ENOMEM;
}

/* LoadImage's combo: top-level image files of input/, sorted. */
static json_t *input_image_list(const struct sim_fs *fs)
{
    struct input_listing l = {json_array(), 0};
    if (l.names == NULL)
        return NULL;
    if (fs != NULL && fs->ops != NULL && fs->ops->list != NULL)
        fs->ops->list(fs->ctx, SIM_DIR_INPUT, "", input_name_cb, &l);
    if (l.err != 0 || sort_unique(l.names) != SIM_NODES_OK) {
        json_decref(l.names);
        return NULL;
    }
    return l.names;
}

/* The class's entry as sent to clients: a new reference, copied when it has a file list. */
static json_t *class_info(const struct sim_node_class *c, const struct sim_fs *fs)
{
    if (!(c->flags & SIM_NODE_F_FILE_INPUT))
        return json_incref(c->info);
    json_t *copy = json_deep_copy(c->info);
    json_t *spec =
        json_object_get(json_object_get(json_object_get(copy, "input"), "required"), "image");
    json_t *files = input_image_list(fs);
    if (copy == NULL || files == NULL || json_array_set_new(spec, 0, files) != 0) {
        json_decref(copy);
        return NULL;
    }
    return copy;
}

json_t *sim_nodes_object_info(const struct sim_nodes *nodes, const struct sim_fs *fs)
{
    json_t *all = json_object();
    for (size_t i = 0; all != NULL && i < nodes->n; i++) {
        json_t *info = class_info(&nodes->classes[i], fs);
        if (info == NULL || json_object_set_new(all, nodes->classes[i].name, info) != 0) {
            json_decref(all);
            return NULL;
        }
    }
    return all;
}

json_t *sim_nodes_object_info_one(const struct sim_nodes *nodes, const char *name,
                                  const struct sim_fs *fs)
{
    json_t *one = json_object();
    const struct sim_node_class *c = sim_nodes_find(nodes, name);
    if (one == NULL || c == NULL)
        return one;
    json_t *info = class_info(c, fs);
    if (info == NULL || json_object_set_new(one, c->name, info) != 0) {
        json_decref(one);
        return NULL;
    }
    return one;
}

json_t *sim_nodes_model_folders(const struct sim_nodes *nodes)
{
    json_t *arr = json_array();
    const char *key;
    json_t *list;
    json_object_foreach(nodes->models, key, list)
    {
        (void)list;
        if (arr != NULL && json_array_append_new(arr, json_string(key)) != 0) {
            json_decref(arr);
            return NULL;
        }
    }
    return arr;
}

json_t *sim_nodes_model_files(const struct sim_nodes *nodes, const char *folder)
{
    json_t *list = json_object_get(nodes->models, folder);
    return list != NULL ? json_deep_copy(list) : NULL;
}

bool sim_nodes_has_model(const struct sim_nodes *nodes, const char *folder, const char *file)
{
    json_t *list = json_object_get(nodes->models, folder);
    for (size_t i = 0; i < json_array_size(list); i++) {
        if (strcmp(json_string_value(json_array_get(list, i)), file) == 0)
            return true;
    }
    return false;
}

json_t *sim_node_input(const struct sim_node_class *c, const char *name, const char **category)
{
    static const char *const cats[] = {"required", "optional", "hidden"};
    json_t *input = json_object_get(c->info, "input");
    for (size_t i = 0; i < 3; i++) {
        json_t *spec = json_object_get(json_object_get(input, cats[i]), name);
        if (spec != NULL) {
            if (category != NULL)
                *category = cats[i];
            return spec;
        }
    }
    return NULL;
}

json_t *sim_node_outputs(const struct sim_node_class *c)
{
    return json_object_get(c->info, "output");
}

bool sim_node_is_output(const struct sim_node_class *c)
{
    return (c->flags & SIM_NODE_F_OUTPUT) != 0;
}

const char *sim_node_display_name(const struct sim_node_class *c)
{
    const char *d = json_string_value(json_object_get(c->info, "display_name"));
    return d != NULL ? d : c->name;
}
