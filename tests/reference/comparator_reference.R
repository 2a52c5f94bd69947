# Reference numbers for the comparison of the model with an existing score
# (cementleak_stats/validation/comparison.py; tests/test_comparison.py).
#
# R 4.2, survival 3.5, riskRegression 2022.11.28, prodlim, jsonlite.  Run from the repository root:
#   Rscript tests/reference/comparator_reference.R
# Writes tests/reference/comparator_<name>.json (committed; CI never runs R).
#
# Model: coxph on the study's predictors (the univariable screen, or prespecified); comparator:
# coxph(Surv(t, e) ~ <analysis.comparator.variable>), both on the development cohort, both applied
# unchanged to the validation cohort (shipped study: the SYNTHETIC second centre).
#   concordance(fit) / concordance(fit, newdata = val)             Harrell's C of each
#   Score(list(model = risk_m, comparator = risk_c), Surv(t, e) ~ 1, times = h - 1e-6,
#         metrics = "auc", cens.model = "km", conservative = TRUE)$AUC$contrasts   ΔAUC, SE, P
#   NRI and IDI written out (no CRAN package for them is installed here; nricens/survIDINRI are
#   not packaged in Debian): IPCW weights 1/G(T-) for events by t, 1/G(t) for event-free at t,
#   G = prodlim(Hist(t, e) ~ 1, reverse = TRUE); up = new > old, down = new < old;
#   NRI = E1[up] - E1[down] + E0[down] - E0[up]; IDI = E1[new - old] - E0[new - old];
#   t = u (1 - 1e-6), risks by t from survfit(fit, newdata)
#   net benefit of the comparator's risk at u (survfit Kaplan-Meier, Vickers et al. 2008)
source("tests/reference/survival_common.R")   # prepare(), fit_cox(), screen_reference()
source("tests/reference/selected_model.R")     # model_vars()
suppressPackageStartupMessages({library(prodlim)})
out <- "tests/reference"

compare_in <- function(fit, fit_c, d, horizons, thresholds) {
  sf <- survfit(fit); sfc <- survfit(fit_c)
  lp <- unname(predict(fit, newdata = d, type = "lp")); lpc <- unname(predict(fit_c, newdata = d, type = "lp"))
  risk <- function(s, l, t) 1 - summary(s, times = t, extend = TRUE)$surv^exp(l)
  t <- d$tt_; e <- d$ee_
  res <- list(c_model = unname(concordance(fit, newdata = d)$concordance),
              c_comparator = unname(concordance(fit_c, newdata = d)$concordance), auc = list())
  for (h in horizons) {
    ta <- h - 1e-6
    sc <- Score(list(model = matrix(risk(sf, lp, ta), ncol = 1), comparator = matrix(risk(sfc, lpc, ta), ncol = 1)),
                formula = Surv(tt_, ee_) ~ 1, data = d, times = ta, metrics = "auc", cens.model = "km",
                conservative = TRUE, se.fit = TRUE, null.model = FALSE, contrasts = TRUE)
    a <- as.data.frame(sc$AUC$score); ct <- as.data.frame(sc$AUC$contrasts)
    res$auc[[length(res$auc) + 1]] <- list(horizon = h, model = a$AUC[a$model == "model"],
      comparator = a$AUC[a$model == "comparator"], contrast_model = as.character(ct$model),
      contrast_reference = as.character(ct$reference), delta = ct$delta.AUC, se = ct$se, p = ct$p)
  }
  u <- horizons[1]; tb <- u * (1 - 1e-6)
  new <- risk(sf, lp, tb); old <- risk(sfc, lpc, tb)
  G <- prodlim(Hist(tt_, ee_) ~ 1, data = d, reverse = TRUE)
  G_at <- function(x, left) {
    idx <- if (left) findInterval(x, G$time, left.open = TRUE) else findInterval(x, G$time)
    ifelse(idx == 0, 1, G$surv[pmax(idx, 1)])
  }
  case <- e == 1 & t <= tb; alive <- t > tb
  w1 <- ifelse(case, 1 / G_at(t, TRUE), 0); w0 <- ifelse(alive, 1 / G_at(tb, FALSE), 0)
  m <- function(w, x) sum(w * x) / sum(w)
  up <- as.numeric(new > old); down <- as.numeric(new < old); dd <- new - old
  res$nri_events <- m(w1, up) - m(w1, down); res$nri_nonevents <- m(w0, down) - m(w0, up)
  res$nri <- res$nri_events + res$nri_nonevents
  res$risk_change_events <- m(w1, dd); res$risk_change_nonevents <- m(w0, dd)
  res$idi <- res$risk_change_events - res$risk_change_nonevents
  rc <- risk(sfc, lpc, u)
  km_u <- function(tt, ee) {
    s <- summary(survfit(Surv(tt, ee) ~ 1), times = u, extend = TRUE)$surv
    if (max(tt) < u && s > 0) NA_real_ else s
  }
  res$net_benefit_comparator <- sapply(thresholds, function(pt) {
    pos <- rc >= pt
    if (!any(pos)) return(0)
    s <- km_u(t[pos], e[pos]); k <- mean(pos)
    (1 - s) * k - s * k * pt / (1 - pt)
  })
  res
}

comparator_reference <- function(name, study_file, data_file, horizons, validation_file = NULL) {
  spec <- yaml::read_yaml(study_file)
  p <- prepare(spec, read.csv(data_file, stringsAsFactors = FALSE))
  d <- p$data
  vars <- model_vars(spec, p)
  fit <- fit_cox(vars, d)
  fit_c <- fit_cox(spec$analysis$comparator$variable, d)
  thr <- round(seq(0.01, 0.60, by = 0.01), 10)
  res <- list(variables = vars, comparator = spec$analysis$comparator$variable,
              development = compare_in(fit, fit_c, d, horizons, thr))
  if (!is.null(validation_file)) {
    v <- prepare(spec, read.csv(validation_file, stringsAsFactors = FALSE))$data
    res$validation <- compare_in(fit, fit_c, v, horizons, thr)
  }
  res$source <- list(R = R.version.string, study_file = study_file, data_file = data_file,
                     data_md5 = unname(tools::md5sum(data_file)))
  write_json(res, file.path(out, paste0("comparator_", name, ".json")), digits = NA, auto_unbox = TRUE, pretty = TRUE)
  cat(name, ": C", res$development$c_model, res$development$c_comparator, " NRI", res$development$nri, "\n")
}

comparator_reference("shipped", "study.yaml", "data/cohort.csv", c(12, 6), validation_file = "data/cohort_centre2.csv")
comparator_reference("gbsg2", "tests/studies/gbsg2/study.yaml", "tests/studies/gbsg2/gbsg2.csv", c(5, 1, 3))
