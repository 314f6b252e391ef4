"""EPE-NAS (Lopes et al., 2021): for each class c, the correlation matrix of the input
Jacobians of that class's samples, e_c = sum of log(|corr| + k) over its entries (k = 1e-5;
divided by the matrix size when there are over 100 classes). Score: sum of |e_c| over classes
(up to 100 classes) or the mean over classes of sum_c' |e_c - e_c'| (more classes). Networks
whose Jacobians differ more within a class score higher."""

import torch

from archsearch.estimators.zero_cost.base import ProxyContext, correlation, proxy

K = 1e-5


@proxy("epe_nas")
def epe_nas(ctx: ProxyContext) -> float:
    jacobian = ctx.jacobian_pass()["jacobian"]
    per_class = {}
    for c in torch.unique(ctx.y).tolist():
        rows = jacobian[ctx.y == c]
        e = torch.log(correlation(rows).abs() + K).sum()
        if ctx.num_classes > 100:
            e = e / rows.shape[0]
        per_class[c] = float(e)
    values = torch.tensor(list(per_class.values()), dtype=torch.float64)
    if ctx.num_classes <= 100:
        return float(values.abs().sum())
    return float((values[:, None] - values[None, :]).abs().sum() / len(values))
