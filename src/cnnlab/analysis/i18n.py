"""Every word the analysis commands print, in English and in the Chinese lecture notes' terms.

The Chinese headers follow the AlexNet table of the course notes (层次, 输入维度, 卷积核数,
神经元数, 滤波器边长, 步长, Padding, 输出维度, 内存, 参数) so students can match rows line by line.
Flags on single rows (a window that does not tile its input, ...) and model cards stay in English.
"""

from cnnlab.errors import CnnlabError

LANGUAGES = ("en", "zh")

COLUMNS = {
    "en": {
        "name": "layer", "type": "type", "window": "window", "kernel": "kernel", "stride": "stride", "padding": "padding",
        "groups": "groups", "dilation": "dilation", "units": "filters/units", "input": "input",
        "output": "output", "params": "params", "frozen": "frozen params", "memory": "memory",
        "macs": "MACs", "other": "other ops", "rf": "RF", "jump": "jump", "pad": "eff. pad", "start": "start",
        "notes": "notes",
        "model": "model", "depth": "depth", "activations": "activation memory", "training": "training memory",
        "aux": "training-only params",
    },
    "zh": {
        "name": "层次", "type": "类型", "window": "核/步长", "kernel": "滤波器边长", "stride": "步长", "padding": "Padding",
        "groups": "分组数", "dilation": "空洞率", "units": "卷积核数/神经元数", "input": "输入维度",
        "output": "输出维度", "params": "参数", "frozen": "冻结参数", "memory": "内存",
        "macs": "乘加次数", "other": "其他运算", "rf": "感受野", "jump": "等效步长", "pad": "等效填充", "start": "起点",
        "notes": "备注",
        "model": "模型", "depth": "深度", "activations": "前向激活内存", "training": "训练内存估计",
        "aux": "仅训练时的参数",
    },
}

TOTALS = {
    "en": {
        "title": "{model}, input {shape} ({layout}), batch {batch}",
        "params": "parameters",
        "params_detail": "trainable {trainable}, frozen {frozen}",
        "params_aux": "{inference} (+ {aux} in training-only heads, {total} in all)",
        "weights": "weights memory",
        "input": "input memory (fp32, batch)",
        "activations": "forward activation memory (fp32, batch; every new tensor of the inference pass)",
        "macs": "MACs per image (inference; FLOPs = 2 × MACs = {flops})",
        "other": "other ops per image (pooling, activations, normalisation, additions)",
        "depth": "depth (conv + linear layers on the longest path)",
        "rf": "receptive field of the last feature map (size, jump, effective padding)",
        "rf_nominal": "nominal: deformable layers move their samples, so no finite field bounds it",
        "nominal": "nominal",
        "training": "training memory estimate ({precision}, {optimizer}, batch {batch})",
        "training_detail": "the peak of backward = weights {weights} + optimizer state {state} + saved activations "
        "still alive {alive} + gradients so far {so_far} + the running call's input and output gradients "
        "{temporary}; in all, gradients {gradients} and saved activations {activations} (backward frees "
        "activations as gradients appear)",
        "training_only": "training only",
        "values": "{count} values per image",
        "notes": "notes",
    },
    "zh": {
        "title": "{model}，输入 {shape} ({layout})，批量 {batch}",
        "params": "参数总数",
        "params_detail": "可训练 {trainable}，冻结 {frozen}",
        "params_aux": "{inference} (+ 仅训练时使用的辅助分类器 {aux}，共 {total})",
        "weights": "权重内存",
        "input": "输入内存 (fp32，整批)",
        "activations": "前向激活内存 (fp32，整批；推理时每个新张量)",
        "macs": "每张图像的乘加次数 (推理；FLOPs = 2 × MACs = {flops})",
        "other": "每张图像的其他运算 (池化、激活、归一化、加法)",
        "depth": "深度 (最长路径上的卷积层与全连接层)",
        "rf": "最后一个特征图的感受野 (大小，等效步长，等效填充)",
        "rf_nominal": "名义值：可变形卷积会移动采样点，没有有限的感受野能界定它",
        "nominal": "名义值",
        "training": "训练内存估计 ({precision}，{optimizer}，批量 {batch})",
        "training_detail": "反向传播的峰值 = 权重 {weights} + 优化器状态 {state} + 尚未释放的保存激活 {alive} "
        "+ 已生成的梯度 {so_far} + 正在反向传播的那一层的输入与输出梯度 {temporary}；总计梯度 {gradients}，"
        "为反向传播保存的激活 {activations} (反向传播一边释放激活一边生成梯度)",
        "training_only": "仅训练时",
        "values": "每张图像 {count} 个数值",
        "notes": "备注",
    },
}

# `cnnlab list` and `cnnlab show`
ZOO = {
    "en": {
        "name": "name", "aliases": "aliases", "family": "family", "year": "year", "params": "params",
        "input": "input", "paper": "paper", "classes": "classes", "parameters": "parameters", "MACs": "MACs",
        "published error": "published error", "init": "init", "notes": "notes",
        "counted": "{count} trainable (counted)",
        "without_aux": "{count} without the training-only auxiliary heads",
        "card": "card {count}",
        "per_image": "{count} per image",
        "alias_list": "aliases: {aliases}",
    },
    "zh": {
        "name": "名称", "aliases": "别名", "family": "系列", "year": "年份", "params": "参数",
        "input": "输入", "paper": "论文", "classes": "类别数", "parameters": "参数", "MACs": "乘加次数",
        "published error": "论文错误率", "init": "初始化", "notes": "说明",
        "counted": "可训练参数 {count} (实际计数)",
        "without_aux": "去掉仅训练时使用的辅助分类器为 {count}",
        "card": "模型卡片 {count}",
        "per_image": "每张图像 {count}",
        "alias_list": "别名：{aliases}",
    },
}

# `cnnlab calc`
CALC = {
    "en": {
        "output": "output size = (W − F + 2P)/S + 1 = {formula} = {value}",
        "empty": "the {what} does not fit: a {size}-pixel input gives an empty output; "
        "use an input of at least {smallest} pixels or more padding",
        "misfit": "warning: not an integer: {misfit}",
        "rounding": "(PyTorch rounds down unless ceil_mode=True; the lecture formula assumes it divides)",
        "volume": "output volume = {filters}×{out}×{out} = {values} values",
        "params": "parameters = F·F·(C/G)·K + K = {formula} = {total} ({weights} weights + {biases} biases)",
        "macs": "MACs = out·out·K·F·F·(C/G) = {formula} = {macs} (FLOPs = 2 × MACs = {flops})",
        "pool_params": "parameters = 0",
        "convolution": "convolution", "pooling": "pooling window",
        "field": "receptive field of {layers} stacked {kernel}×{kernel} layers (stride {stride}): {field}×{field} "
        "(jump {jump})",
        "stack_units": "parameters (C channels in and out, no biases): {layers}·{per_layer}C² = {stacked}C² "
        "vs {single}C² for one {field}×{field} layer",
        "stack_count": "parameters (C = {channels}, no biases): {layers}·{per_layer}·{channels}² = {stacked} "
        "vs {field}²·{channels}² = {single} for one {field}×{field} layer",
        "nonlinear": "and {layers} non-linearities instead of 1",
    },
    "zh": {
        "output": "输出尺寸 = (W − F + 2P)/S + 1 = {formula} = {value}",
        "empty": "{what}放不下：{size} 像素的输入得到空的输出；请使用至少 {smallest} 像素的输入或更多的 Padding",
        "misfit": "警告：结果不是整数：{misfit}",
        "rounding": "(PyTorch 默认向下取整，ceil_mode=True 时向上取整；讲义中的公式假定能够整除)",
        "volume": "输出体积 = {filters}×{out}×{out} = {values} 个数值",
        "params": "参数 = F·F·(C/G)·K + K = {formula} = {total} ({weights} 个权重 + {biases} 个偏置)",
        "macs": "乘加次数 = out·out·K·F·F·(C/G) = {formula} = {macs} (FLOPs = 2 × 乘加次数 = {flops})",
        "pool_params": "参数 = 0",
        "convolution": "卷积核", "pooling": "池化窗口",
        "field": "{layers} 层堆叠的 {kernel}×{kernel} 层 (步长 {stride}) 的感受野：{field}×{field} (等效步长 {jump})",
        "stack_units": "参数 (输入输出均为 C 个通道，不计偏置)：{layers}·{per_layer}C² = {stacked}C²，"
        "而一层 {field}×{field} 需要 {single}C²",
        "stack_count": "参数 (C = {channels}，不计偏置)：{layers}·{per_layer}·{channels}² = {stacked}，"
        "而一层 {field}×{field} 需要 {field}²·{channels}² = {single}",
        "nonlinear": "并且有 {layers} 个非线性激活，而不是 1 个",
    },
}

# `cnnlab summary --fits` and `--unit`
ANSWERS = {
    "en": {
        "fits": "{model}, input {shape}, {precision}, {optimizer}: the largest batch whose training-memory estimate "
        "fits in {budget} is {batch}",
        "fits_none": "{model}, input {shape}, {precision}, {optimizer}: not even batch 1 fits in {budget} "
        "(it needs {needed})",
        "fits_parts": "at batch {batch}: {total} at the peak of backward = weights {weights} + optimizer state "
        "{state} + gradients so far {so_far} + saved activations still alive {alive} + the temporary of the call "
        "running backward (its input and output gradients) {temporary}",
        "fits_all": "in all: gradients {gradients}, saved activations {activations}; the largest temporary of "
        "any call: {largest}",
        "fits_next": "batch {batch} would need {total}",
        "unit": "{layer}, unit {unit} of its {shape} output ({layout}), sees input {box} (the image is {size})",
        "unit_inside": "inside the image: {box}",
        "unit_padding": "{count} of its {total} pixels lie in the padding",
        "rows": "rows", "cols": "columns",
    },
    "zh": {
        "fits": "{model}，输入 {shape}，{precision}，{optimizer}：训练内存估计不超过 {budget} 的最大批量为 {batch}",
        "fits_none": "{model}，输入 {shape}，{precision}，{optimizer}：批量 1 也放不下 {budget} (需要 {needed})",
        "fits_parts": "批量 {batch}：反向传播峰值 {total} = 权重 {weights} + 优化器状态 {state} + 已生成的梯度 {so_far} "
        "+ 尚未释放的保存激活 {alive} + 正在反向传播的那一层的临时张量 (其输入与输出梯度) {temporary}",
        "fits_all": "总计：梯度 {gradients}，保存的激活 {activations}；任何一层最大的临时张量 {largest}",
        "fits_next": "批量 {batch} 需要 {total}",
        "unit": "{layer} 的输出 {shape} ({layout}) 中的单元 {unit} 看到输入 {box} (图像大小 {size})",
        "unit_inside": "在图像内部：{box}",
        "unit_padding": "其 {total} 个像素中有 {count} 个落在 Padding 中",
        "rows": "行", "cols": "列",
    },
}


def check_lang(lang: str) -> None:
    if lang not in LANGUAGES:
        raise CnnlabError(f"unknown language '{lang}': choose one of {', '.join(LANGUAGES)}")


def labels(lang: str) -> tuple[dict[str, str], dict[str, str]]:
    check_lang(lang)
    return COLUMNS[lang], TOTALS[lang]


def words(table: dict[str, dict[str, str]], lang: str) -> dict[str, str]:
    """One language's entries of `table` (ZOO, CALC, ANSWERS)."""
    check_lang(lang)
    return table[lang]
