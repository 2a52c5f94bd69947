# Reference numbers for the Cox LASSO selection (cementleak_stats/models/lasso.py;
# tests/test_lasso.py), from R glmnet 4.1 (Debian r-cran-glmnet).
#
# Run from the repository root:   Rscript tests/reference/lasso_reference.R
# Reads tests/reference/data/lasso_<name>.csv (the candidate terms as the package encodes them,
# time, event and the cross-validation fold of each patient, drawn from the study's seed) and
# lasso_<name>_lambda.csv (the package's penalty path); writes tests/reference/lasso_<name>.json.
#   glmnet(x, Surv(t, e), family = "cox", alpha = 1, standardize = TRUE, thresh = 1e-14)
#     its own default path (lambda max) and the coefficients on the package's path
#   cv.glmnet(x, y, family = "cox", foldid = fold, lambda = path, grouped = TRUE, thresh = 1e-14)
#     cvm, cvsd, lambda.min, lambda.1se (type.measure = "deviance")
#   coef(glmnet(...), s = lambda.min)  the coefficients at the chosen penalty
suppressPackageStartupMessages({library(glmnet); library(survival); library(jsonlite)})
out <- "tests/reference"
for (name in c("shipped", "gbsg2")) {
  d <- read.csv(file.path(out, "data", paste0("lasso_", name, ".csv")), check.names = FALSE)
  lam <- read.csv(file.path(out, "data", paste0("lasso_", name, "_lambda.csv")))$lambda
  x <- as.matrix(d[, setdiff(names(d), c("time", "event", "fold"))])
  y <- Surv(d$time, d$event)
  own <- glmnet(x, y, family = "cox", alpha = 1, standardize = TRUE, thresh = 1e-14)
  fit <- glmnet(x, y, family = "cox", alpha = 1, standardize = TRUE, lambda = lam, thresh = 1e-14, maxit = 1e6)
  cv <- cv.glmnet(x, y, family = "cox", alpha = 1, foldid = d$fold, lambda = lam, grouped = TRUE, thresh = 1e-14,
                  maxit = 1e6)
  res <- list(terms = colnames(x), lambda_max_default = own$lambda[1], lambda = fit$lambda,
              coef = unname(as.matrix(coef(fit))), cvm = cv$cvm, cvsd = cv$cvsd, lambda_min = cv$lambda.min,
              lambda_1se = cv$lambda.1se, coef_min = unname(as.matrix(coef(fit, s = cv$lambda.min)))[, 1],
              source = list(glmnet = as.character(packageVersion("glmnet")),
                            data_md5 = unname(tools::md5sum(file.path(out, "data", paste0("lasso_", name, ".csv"))))))
  write_json(res, file.path(out, paste0("lasso_", name, ".json")), digits = NA, auto_unbox = TRUE, pretty = TRUE)
  cat(name, "lambda.min", cv$lambda.min, "lambda.1se", cv$lambda.1se, "\n")
}
