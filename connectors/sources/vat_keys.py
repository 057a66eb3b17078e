"""The keys Chinese VAT invoice exports use, mapped to our field names (docs/connectors.md).

Exports from invoicing and verification systems name fields by the pinyin initials of
their Chinese names: 发票代码 fpdm, 发票号码 fphm, 开票日期 kprq, 发票金额 fpje, 发票税额
fpse, 价税合计 jshj, 销方税号 xfsh, 购方税号 gfsh; the fully digital invoice's services
spell the parties 销售方/购买方 (xsf/gmf). A key listed here is read as the field it maps
to; the first present wins, English first.
"""

from __future__ import annotations

ALIASES: dict[str, tuple[str, ...]] = {
    "invoice_code": ("invoice_code", "fpdm"),                       # 发票代码
    "invoice_number": ("invoice_number", "fphm"),                   # 发票号码
    "issue_date": ("issue_date", "kprq"),                           # 开票日期
    "seller_name": ("seller_name", "xfmc", "xsfmc"),                # 销方名称 / 销售方名称
    "seller_tax_id": ("seller_tax_id", "xfsh", "xfsbh", "xfnsrsbh", "xsfnsrsbh"),  # 销方(纳税人识别)号
    "buyer_name": ("buyer_name", "gfmc", "gmfmc"),                  # 购方名称 / 购买方名称
    "buyer_tax_id": ("buyer_tax_id", "gfsh", "gfsbh", "gfnsrsbh", "gmfnsrsbh"),    # 购方(纳税人识别)号
    "amount": ("amount", "je", "hjje", "fpje", "bhsje"),            # 金额 / 合计金额 / 发票金额 / 不含税金额
    "tax": ("tax", "se", "hjse", "fpse"),                           # 税额 / 合计税额 / 发票税额
    "total": ("total", "jshj"),                                     # 价税合计
    "currency": ("currency",),
    "due_date": ("due_date",),
    "po_id": ("po_id",),
}
