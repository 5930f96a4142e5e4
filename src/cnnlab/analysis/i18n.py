"""Column headers and totals labels in English and in the Chinese lecture notes' terms.

The Chinese headers follow the AlexNet table of the course notes (层次, 输入维度, 卷积核数,
神经元数, 滤波器边长, 步长, Padding, 输出维度, 内存, 参数) so students can match rows line by line.
"""

from cnnlab.errors import CnnlabError

COLUMNS = {
    "en": {
        "name": "layer", "type": "type", "kernel": "kernel", "stride": "stride", "padding": "padding",
        "groups": "groups", "dilation": "dilation", "units": "filters/units", "input": "input (C×H×W)",
        "output": "output (C×H×W)", "params": "params", "frozen": "frozen params", "memory": "memory",
        "macs": "MACs", "other": "other ops", "rf": "RF", "jump": "jump", "start": "start", "notes": "notes",
        "model": "model", "depth": "depth", "activations": "activation memory", "training": "training memory",
    },
    "zh": {
        "name": "层次", "type": "类型", "kernel": "滤波器边长", "stride": "步长", "padding": "Padding",
        "groups": "分组数", "dilation": "空洞率", "units": "卷积核数/神经元数", "input": "输入维度 (C×H×W)",
        "output": "输出维度 (C×H×W)", "params": "参数", "frozen": "冻结参数", "memory": "内存",
        "macs": "乘加次数 (MACs)", "other": "其他运算", "rf": "感受野", "jump": "等效步长", "start": "起点",
        "notes": "备注", "model": "模型", "depth": "深度", "activations": "前向激活内存", "training": "训练内存估计",
    },
}

TOTALS = {
    "en": {
        "title": "{model}, input {shape}, batch {batch}",
        "params": "parameters",
        "params_detail": "trainable {trainable}, frozen {frozen}; in training-only heads {aux}",
        "weights": "weights memory",
        "input": "input memory (fp32, batch)",
        "activations": "forward activation memory (fp32, batch; every new tensor of the inference pass)",
        "macs": "MACs per image (inference; FLOPs = 2 × MACs = {flops})",
        "other": "other ops per image (pooling, activations, normalisation, additions)",
        "depth": "depth (conv + linear layers on the longest path)",
        "rf": "receptive field of the last feature map (size, jump)",
        "training": "training memory estimate ({precision}, {optimizer}, batch {batch})",
        "training_detail": "the peak of backward, with weights {weights}, optimizer state {state}, gradients up to "
        "{gradients}, activations kept for backward up to {activations} (backward frees activations as gradients "
        "appear)",
        "training_only": "training only",
        "values": "{count} values per image",
    },
    "zh": {
        "title": "{model}，输入 {shape}，批量 {batch}",
        "params": "参数总数",
        "params_detail": "可训练 {trainable}，冻结 {frozen}；仅训练时使用的辅助分类器 {aux}",
        "weights": "权重内存",
        "input": "输入内存 (fp32，整批)",
        "activations": "前向激活内存 (fp32，整批；推理时每个新张量)",
        "macs": "每张图像的乘加次数 (推理；FLOPs = 2 × MACs = {flops})",
        "other": "每张图像的其他运算 (池化、激活、归一化、加法)",
        "depth": "深度 (最长路径上的卷积层与全连接层)",
        "rf": "最后一个特征图的感受野 (大小，等效步长)",
        "training": "训练内存估计 ({precision}，{optimizer}，批量 {batch})",
        "training_detail": "反向传播的峰值：权重 {weights}，优化器状态 {state}，梯度至多 {gradients}，"
        "为反向传播保存的激活至多 {activations} (反向传播一边释放激活一边生成梯度)",
        "training_only": "仅训练时",
        "values": "每张图像 {count} 个数值",
    },
}


def labels(lang: str) -> tuple[dict[str, str], dict[str, str]]:
    if lang not in COLUMNS:
        raise CnnlabError(f"unknown language '{lang}': choose one of {', '.join(COLUMNS)}")
    return COLUMNS[lang], TOTALS[lang]
