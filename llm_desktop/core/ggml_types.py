"""GGML tensor types and llama.cpp file types: the sizes and names the header reader needs.

The same values as the `gguf` package (gguf 0.19.0), kept here because importing `gguf` pulls in
numpy: about 0.2 s on every start of the app, the CLI and each model host, for two tables.
`tests/core/test_ggml_types.py` fails if they ever differ from the installed `gguf`.
"""

from __future__ import annotations

# ggml type id -> (elements per block, bytes per block)
QUANT_SIZES: dict[int, tuple[int, int]] = {
    0: (1, 4),  # F32
    1: (1, 2),  # F16
    2: (32, 18),  # Q4_0
    3: (32, 20),  # Q4_1
    6: (32, 22),  # Q5_0
    7: (32, 24),  # Q5_1
    8: (32, 34),  # Q8_0
    9: (32, 40),  # Q8_1
    10: (256, 84),  # Q2_K
    11: (256, 110),  # Q3_K
    12: (256, 144),  # Q4_K
    13: (256, 176),  # Q5_K
    14: (256, 210),  # Q6_K
    15: (256, 292),  # Q8_K
    16: (256, 66),  # IQ2_XXS
    17: (256, 74),  # IQ2_XS
    18: (256, 98),  # IQ3_XXS
    19: (256, 50),  # IQ1_S
    20: (32, 18),  # IQ4_NL
    21: (256, 110),  # IQ3_S
    22: (256, 82),  # IQ2_S
    23: (256, 136),  # IQ4_XS
    24: (1, 1),  # I8
    25: (1, 2),  # I16
    26: (1, 4),  # I32
    27: (1, 8),  # I64
    28: (1, 8),  # F64
    29: (256, 56),  # IQ1_M
    30: (1, 2),  # BF16
    34: (256, 54),  # TQ1_0
    35: (256, 66),  # TQ2_0
    39: (32, 17),  # MXFP4
    40: (64, 36),  # NVFP4
    41: (128, 18),  # Q1_0
}

# general.file_type -> llama.cpp's name for it
FILE_TYPE_NAMES: dict[int, str] = {
    0: "ALL_F32",
    1: "MOSTLY_F16",
    2: "MOSTLY_Q4_0",
    3: "MOSTLY_Q4_1",
    7: "MOSTLY_Q8_0",
    8: "MOSTLY_Q5_0",
    9: "MOSTLY_Q5_1",
    10: "MOSTLY_Q2_K",
    11: "MOSTLY_Q3_K_S",
    12: "MOSTLY_Q3_K_M",
    13: "MOSTLY_Q3_K_L",
    14: "MOSTLY_Q4_K_S",
    15: "MOSTLY_Q4_K_M",
    16: "MOSTLY_Q5_K_S",
    17: "MOSTLY_Q5_K_M",
    18: "MOSTLY_Q6_K",
    19: "MOSTLY_IQ2_XXS",
    20: "MOSTLY_IQ2_XS",
    21: "MOSTLY_Q2_K_S",
    22: "MOSTLY_IQ3_XS",
    23: "MOSTLY_IQ3_XXS",
    24: "MOSTLY_IQ1_S",
    25: "MOSTLY_IQ4_NL",
    26: "MOSTLY_IQ3_S",
    27: "MOSTLY_IQ3_M",
    28: "MOSTLY_IQ2_S",
    29: "MOSTLY_IQ2_M",
    30: "MOSTLY_IQ4_XS",
    31: "MOSTLY_IQ1_M",
    32: "MOSTLY_BF16",
    36: "MOSTLY_TQ1_0",
    37: "MOSTLY_TQ2_0",
    38: "MOSTLY_MXFP4_MOE",
    39: "MOSTLY_NVFP4",
    40: "MOSTLY_Q1_0",
    1024: "GUESSED",
}

# llama.cpp marks a file type it guessed from the tensors with this bit (LLAMA_FTYPE_GUESSED).
FILE_TYPE_GUESSED = 1024

# ggml type -> the file type llama.cpp guesses when that type is the most common among a file's
# tensors and the file has no general.file_type (llama_model_loader's switch). It guesses
# ALL_F32 for any type not listed (MXFP4, the integer types, ...).
GUESSED_FILE_TYPES: dict[int, int] = {
    0: 0,  # F32 -> ALL_F32
    1: 1,  # F16 -> MOSTLY_F16
    30: 32,  # BF16 -> MOSTLY_BF16
    2: 2,  # Q4_0 -> MOSTLY_Q4_0
    3: 3,  # Q4_1 -> MOSTLY_Q4_1
    6: 8,  # Q5_0 -> MOSTLY_Q5_0
    7: 9,  # Q5_1 -> MOSTLY_Q5_1
    8: 7,  # Q8_0 -> MOSTLY_Q8_0
    10: 10,  # Q2_K -> MOSTLY_Q2_K
    11: 12,  # Q3_K -> MOSTLY_Q3_K_M
    12: 15,  # Q4_K -> MOSTLY_Q4_K_M
    13: 17,  # Q5_K -> MOSTLY_Q5_K_M
    14: 18,  # Q6_K -> MOSTLY_Q6_K
    34: 36,  # TQ1_0 -> MOSTLY_TQ1_0
    35: 37,  # TQ2_0 -> MOSTLY_TQ2_0
    16: 19,  # IQ2_XXS -> MOSTLY_IQ2_XXS
    17: 20,  # IQ2_XS -> MOSTLY_IQ2_XS
    22: 28,  # IQ2_S -> MOSTLY_IQ2_S
    18: 23,  # IQ3_XXS -> MOSTLY_IQ3_XXS
    19: 24,  # IQ1_S -> MOSTLY_IQ1_S
    29: 31,  # IQ1_M -> MOSTLY_IQ1_M
    20: 25,  # IQ4_NL -> MOSTLY_IQ4_NL
    23: 30,  # IQ4_XS -> MOSTLY_IQ4_XS
    21: 26,  # IQ3_S -> MOSTLY_IQ3_S
    40: 39,  # NVFP4 -> MOSTLY_NVFP4
    41: 40,  # Q1_0 -> MOSTLY_Q1_0
}
