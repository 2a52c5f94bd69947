# Shared by survival_reference.R (tests of models/cox.py, models/ph.py, discrimination.py) and
# the study references it writes for tests/studies/*: read a study file with the `yaml` package,
# build the model with R factors and formulas (independently of the package's design-matrix
# code), and collect every survival / riskRegression number the Python tests compare with.
#
# prepare(): aliases of the study file are mapped to levels; with analysis.missing_data =
# complete_case, rows missing a candidate or prespecified predictor are dropped (as the package's
# patient flow); exclusion rules are not implemented here (no reference study has one).
suppressPackageStartupMessages({
  library(survival); library(yaml); library(jsonlite); library(riskRegression)
})

# As the brief asks; coxph.control warns that toler.chol (default 1.8e-12) is not < eps.  The
# coefficients agree with an independent Newton fit to ~1e-13, so the warning is harmless here.
ctrl <- coxph.control(eps = 1e-12, iter.max = 100)

prepare <- function(spec, d) {
  stopifnot(length(spec$exclusions) == 0)
  d$tt_ <- as.numeric(d[[spec$outcome$time]])
  d$ee_ <- as.integer(d[[spec$outcome$event]])
  mdata <- spec$analysis$missing_data
  if (is.null(mdata) || mdata == "complete_case") {
    used <- union(unlist(lapply(spec$variables, function(v) if (isTRUE(v$candidate)) v$name)),
                  unlist(spec$analysis$predictors))
    d <- d[complete.cases(d[, used, drop = FALSE]), , drop = FALSE]
  }
  info <- list()
  for (v in spec$variables) {
    nm <- v$name
    if (length(v$aliases) > 0) {                  # accepted spellings -> levels
      x <- as.character(d[[nm]])
      a <- unlist(v$aliases)
      hit <- !is.na(x) & x %in% names(a)
      x[hit] <- a[x[hit]]
      d[[nm]] <- x
    }
    if (v$kind == "continuous") {
      d[[nm]] <- as.numeric(d[[nm]])
      info[[nm]] <- list(terms = nm, r = nm)
      next
    }
    lv <- unlist(v$levels)
    ref <- if (is.null(v$reference)) lv[1] else v$reference
    coding <- if (is.null(v$coding)) "score" else v$coding
    if (v$kind == "ordinal" && coding == "score") {
      d[[nm]] <- match(d[[nm]], lv) - 1           # one term: level position 0, 1, 2, ...
      info[[nm]] <- list(terms = nm, r = nm)
    } else {
      others <- setdiff(lv, ref)
      d[[nm]] <- factor(d[[nm]], levels = c(ref, others))   # treatment contrasts
      py <- if (v$kind == "binary") nm else paste0(nm, "[", others, "]")
      info[[nm]] <- list(terms = py, r = paste0(nm, others))
    }
  }
  list(data = d, info = info)
}

fit_cox <- function(vars, d) {
  f <- as.formula(paste("Surv(tt_, ee_) ~", paste(vars, collapse = " + ")))
  coxph(f, data = d, ties = "efron", control = ctrl, x = TRUE)
}

term_map <- function(vars, info) {
  r <- unlist(lapply(vars, function(v) info[[v]]$r))
  py <- unlist(lapply(vars, function(v) info[[v]]$terms))
  setNames(py, r)
}

coef_table <- function(fit, map) {
  s <- summary(fit)
  cf <- s$coefficients
  ci <- s$conf.int
  data.frame(term = unname(map[rownames(cf)]), coef = cf[, "coef"], se = cf[, "se(coef)"],
             hr = cf[, "exp(coef)"], ci_low = ci[, "lower .95"], ci_high = ci[, "upper .95"],
             z = cf[, "z"], p_value = cf[, "Pr(>|z|)"], row.names = NULL)
}

model_reference <- function(vars, p, horizon) {
  d <- p$data
  fit <- fit_cox(vars, d)
  map <- term_map(vars, p$info)
  sf <- survfit(fit)                        # Efron baseline at fit$means
  keep <- sf$n.event > 0
  zf <- cox.zph(fit, transform = "km", terms = FALSE)
  zt <- cox.zph(fit, transform = "km", terms = TRUE)
  cc <- concordance(fit)
  lp <- unname(predict(fit, type = "lp"))
  auc <- function(t) {
    score <- function(conservative)
      Score(list(m = plogis(lp)), formula = Surv(tt_, ee_) ~ 1, data = d, times = t,
            metrics = "auc", cens.model = "km", null.model = FALSE, conf.int = TRUE,
            conservative = conservative)$AUC$score
    s <- score(FALSE)
    # conservative = TRUE: influence function with the censoring weights taken as known
    list(time = t, auc = s$AUC, se = s$se, se_conservative = score(TRUE)$se)
  }
  # the package's documented fallback: lifelines `penalizer` = lambda is this ridge fit,
  # penalty theta/2 * sum(b^2 var(x)) with theta = n * lambda (lifelines standardizes columns)
  X <- fit$x
  pen <- coxph(Surv(d$tt_, d$ee_) ~ ridge(X, theta = nrow(d) * 0.1, scale = TRUE),
               ties = "efron", control = ctrl)
  # calibration-in-the-large and slope by the horizon (Crowson, Atkinson, Therneau, SMMR 2016):
  # E = expected events with follow-up truncated at the horizon, from survival's own
  # predict(type = "expected"); a patient censored before the first event time has E = 0 and
  # O = 0 and is left out (subset = E > 0).  lp_c is centred at colMeans(X) as the package.
  centre_shift <- sum(coef(fit) * (colMeans(fit$x) - fit$means))
  dh <- d
  dh$ee_ <- as.integer(d$ee_ == 1 & d$tt_ <= horizon)
  dh$tt_ <- pmin(d$tt_, horizon)
  E <- unname(predict(fit, newdata = dh, type = "expected"))
  o <- dh$ee_
  lp_c <- lp - centre_shift
  gctl <- glm.control(epsilon = 1e-14, maxit = 100)
  g1 <- glm(o ~ 1 + offset(log(E)), family = poisson, subset = E > 0, control = gctl)
  g2 <- glm(o ~ lp_c + offset(log(E) - lp_c), family = poisson, subset = E > 0, control = gctl)
  # IPCW Brier score just below the horizon, of the risk 1 - S0(t)^exp(lp) (S0 of survfit(fit))
  t_b <- horizon * (1 - 1e-6)
  risk_b <- 1 - summary(sf, times = t_b)$surv^exp(lp)
  bs <- as.data.frame(Score(list(cox = matrix(risk_b, ncol = 1)), formula = Surv(tt_, ee_) ~ 1, data = d,
                            times = t_b, metrics = "brier", cens.model = "km", null.model = TRUE,
                            se.fit = FALSE)$Brier$score)
  list(
    variables = vars,
    brier = list(call = "riskRegression::Score(list(risk), Surv(t, e) ~ 1, times = u * (1 - 1e-6), metrics = 'brier', cens.model = 'km')",
                 t = t_b, brier = bs$Brier[bs$model == "cox"], brier_null = bs$Brier[bs$model == "Null model"]),
    line = list(call = paste("E <- predict(fit, newdata = <follow-up truncated at the horizon>, type = 'expected');",
                             "glm(o ~ 1 + offset(log(E)), poisson, subset = E > 0);",
                             "glm(o ~ lp + offset(log(E) - lp), poisson, subset = E > 0)"),
                expected = sum(E), observed = sum(o), n_zero_expected = sum(E == 0),
                intercept = unname(coef(g1)[1]), slope = unname(coef(g2)[2]),
                slope_intercept = unname(coef(g2)[1])),
    ridge = list(penalizer = 0.1, theta = nrow(d) * 0.1, coef = unname(coef(pen)),
                 se = unname(sqrt(diag(pen$var)))),
    coef = coef_table(fit, map),
    # survival 3.x does not centre columns whose values all lie in {-1, 0, 1} (coxph's
    # `nocenter`): fit$means is 0 there.  The package centres every column at its mean (as
    # rms::cph); centre_shift = sum(b * (colMeans(x) - fit$means)) converts between the two.
    means = setNames(as.list(unname(fit$means)), unname(map[names(fit$means)])),
    colmeans = setNames(as.list(unname(colMeans(fit$x))), unname(map[colnames(fit$x)])),
    centre_shift = centre_shift,
    loglik_null = fit$loglik[1], loglik = fit$loglik[2],
    lr = list(chisq = unname(summary(fit)$logtest["test"]), df = unname(summary(fit)$logtest["df"]),
              p_value = unname(summary(fit)$logtest["pvalue"])),
    # fit$wald.test unrounded (summary() rounds the printed statistic to 2 decimals)
    wald = list(chisq = unname(fit$wald.test), df = length(coef(fit)),
                p_value = pchisq(unname(fit$wald.test), length(coef(fit)), lower.tail = FALSE)),
    iter = fit$iter,
    baseline = data.frame(time = sf$time[keep], cumhaz = sf$cumhaz[keep], surv = sf$surv[keep]),
    s0_horizon = summary(sf, times = horizon)$surv,
    lp = lp,
    zph = list(table = data.frame(term = c(unname(map[rownames(zf$table)[-nrow(zf$table)]]), "GLOBAL"),
                                  zf$table, row.names = NULL),
               time = unname(zf$time), x = unname(zf$x), y = unname(zf$y)),
    zph_terms = list(table = data.frame(term = rownames(zt$table), zt$table, row.names = NULL),
                     y = unname(zt$y)),
    concordance = list(concordance = unname(cc$concordance), var = unname(cc$var),
                       count = as.list(cc$count)),
    auc = list(below_horizon = auc(horizon - 1e-6), mid = auc(horizon / 2))
  )
}

screen_reference <- function(spec, p) {
  rows <- list()
  for (v in spec$variables) {
    if (!isTRUE(v$candidate)) next
    fit <- fit_cox(v$name, p$data)
    tab <- coef_table(fit, term_map(v$name, p$info))
    df <- nrow(tab)
    lr <- 2 * diff(fit$loglik)
    tab$variable <- v$name
    tab$lr_chisq <- lr
    tab$variable_df <- df
    # one-term variable: Wald P of its coefficient; several terms: likelihood-ratio test
    tab$variable_p_value <- if (df == 1) tab$p_value[1] else pchisq(lr, df, lower.tail = FALSE)
    rows[[v$name]] <- tab
  }
  do.call(rbind, unname(rows))
}

run <- function(name, study_file, data_file, extra = list()) {
  spec <- yaml::read_yaml(study_file)
  d <- read.csv(data_file, stringsAsFactors = FALSE)
  p <- prepare(spec, d)
  horizon <- spec$outcome$horizon
  screen <- screen_reference(spec, p)
  sel <- spec$analysis$selection
  if (!is.null(sel) && sel == "prespecified") {
    selected <- unlist(spec$analysis$predictors)
  } else {
    cut <- if (is.null(spec$analysis$screen_p_value)) 0.05 else spec$analysis$screen_p_value
    pv <- tapply(screen$variable_p_value, screen$variable, `[`, 1)
    cand <- unique(screen$variable)                    # study-file order
    selected <- cand[pv[cand] < cut]
  }
  models <- list(main = model_reference(selected, p, horizon))
  for (m in names(extra)) models[[m]] <- model_reference(extra[[m]], p, horizon)
  out <- list(
    source = list(R = R.version.string, survival = as.character(packageVersion("survival")),
                  riskRegression = as.character(packageVersion("riskRegression")),
                  study_file = study_file, data_file = data_file,
                  data_md5 = unname(tools::md5sum(data_file)), n = nrow(d), n_analysed = nrow(p$data),
                  events = sum(p$data$ee_), horizon = horizon),
    screen = screen, selected = selected, models = models)
  path <- file.path("tests/reference", paste0("survival_", name, ".json"))
  writeLines(toJSON(out, digits = NA, auto_unbox = TRUE, pretty = TRUE, dataframe = "columns"), path)
  cat("wrote", path, "- selected:", paste(selected, collapse = ", "), "\n")
}

