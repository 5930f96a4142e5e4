"""`cnnlab list` and `cnnlab show`, run through the real command-line entry point."""

import json

from cnnlab.cli import main
from cnnlab.models import card, list_models


def test_list_prints_every_model_with_its_card_numbers(capsys):
    assert main(["list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["name", "aliases", "family", "year", "params", "input", "paper"]
    assert len(lines) == 2 + len(list_models())
    vgg_d = next(line for line in lines if line.startswith("vgg_d "))
    assert vgg_d.split()[:6] == ["vgg_d", "vgg16", "VGG", "2014", "138,357,544", "3x224x224"]
    assert vgg_d.endswith("Very Deep Convolutional Networks for Large-Scale Image Recognition")


def test_list_filters_by_pattern_word_or_alias(capsys):
    assert main(["list", "lenet*", "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [(r["name"], r["params"]) for r in rows] == [("lenet5", 61_706), ("lenet5_1998", 60_000)]
    assert main(["list", "alexnet", "--format", "csv"]) == 0  # a plain word matches anywhere
    assert [line.split(",")[0] for line in capsys.readouterr().out.splitlines()[1:]] == [
        "alexnet", "alexnet_onetower", "alexnet_torchvision"]
    assert main(["list", "vgg16*", "--format", "csv"]) == 0  # aliases match too
    assert [line.split(",")[0] for line in capsys.readouterr().out.splitlines()[1:]] == ["vgg_d", "vgg_d_bn"]


def test_list_without_a_match_exits_2(capsys):
    assert main(["list", "transformer"]) == 2
    assert "no model matches 'transformer'" in capsys.readouterr().err


def test_show_prints_the_card_and_the_module_tree(capsys):
    assert main(["show", "vgg16"]) == 0
    out = capsys.readouterr().out
    c = card("vgg_d")
    assert "vgg_d (aliases: vgg16)" in out and str(c.paper) in out
    assert "138,357,544 trainable (counted); card 138,357,544" in out
    assert c.init in out and "(features): Sequential(" in out and "Linear(in_features=25088, out_features=4096" in out


def test_show_unknown_model_suggests_and_exits_2(capsys):
    assert main(["show", "alexnt"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("cnnlab: error: unknown model 'alexnt': did you mean alexnet") and err.count("\n") == 1


def test_show_counts_googlenet_with_and_without_its_auxiliary_heads(capsys):
    assert main(["show", "googlenet"]) == 0
    out = capsys.readouterr().out
    assert "13,378,280 trainable (counted); 6,998,552 without the training-only auxiliary heads; card 6,998,552" in out


def test_list_orders_families_by_year_and_names_naturally(capsys):
    assert main(["list", "--format", "csv"]) == 0
    names = [line.split(",")[0] for line in capsys.readouterr().out.splitlines()[1:]]
    assert names.index("resnet18") < names.index("resnet34") < names.index("resnet50") < names.index("resnet101")
    assert names.index("resnet20") < names.index("resnet110") < names.index("resnet1202")
    assert names.index("lenet5") < names.index("alexnet") < names.index("vgg_a")  # 1998, 2012, 2014
    families = [card(name).family for name in names]
    assert all(families.index(f) == i or families[i - 1] == f for i, f in enumerate(families))  # grouped


def test_list_and_show_in_chinese(capsys):
    assert main(["list", "vgg16", "--lang", "zh"]) == 0
    assert capsys.readouterr().out.splitlines()[0].split() == ["名称", "别名", "系列", "年份", "参数", "输入", "论文"]
    assert main(["show", "googlenet", "--lang", "zh"]) == 0
    out = capsys.readouterr().out
    assert "可训练参数 13,378,280 (实际计数); 去掉仅训练时使用的辅助分类器为 6,998,552; 模型卡片 6,998,552" in out
    assert out.startswith("名称") and "论文" in out and "(inception3a): Inception(" in out
