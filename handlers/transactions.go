package handlers

import (
	"encoding/json"
	"net/http"

	"github.com/labstack/echo/v4"
	"github.com/regulars/regulars/models"
)

func (s *Server) createTransaction(c echo.Context) error {
	var in models.TransactionInput
	if err := decodeJSON(c, &in); err != nil {
		return err
	}
	t, outcome, err := s.db.RecordTransaction(c.Request().Context(), principal(c), in)
	if err != nil {
		return err
	}
	if outcome == models.Replayed {
		c.Response().Header().Set("Idempotent-Replayed", "true")
		return c.JSON(http.StatusOK, t)
	}
	return c.JSON(http.StatusCreated, t)
}

type batchInput struct {
	Transactions []json.RawMessage `json:"transactions"`
}

type batchOutput struct {
	Created  int           `json:"created"`
	Replayed int           `json:"replayed"`
	Failed   int           `json:"failed"`
	Results  []batchResult `json:"results"`
}

// batchResult is models.BatchResult with its error in the contract's JSON shape.
type batchResult struct {
	Index       int                 `json:"index"`
	ID          string              `json:"id,omitempty"`
	Status      int                 `json:"status"`
	Transaction *models.Transaction `json:"transaction,omitempty"`
	Error       *errorDetail        `json:"error,omitempty"`
}

// createTransactionBatch records up to models.MaxBatch transactions. Each item is decoded on its
// own so that one item of the wrong shape fails alone, with its own error.
func (s *Server) createTransactionBatch(c echo.Context) error {
	var in batchInput
	if err := decodeJSON(c, &in); err != nil {
		return err
	}
	if in.Transactions == nil {
		return &models.Error{Code: models.EINVALID, Message: "invalid batch",
			Fields: map[string]string{"transactions": "is required: an array of transactions"}}
	}
	if len(in.Transactions) > models.MaxBatch {
		return models.Errorf(models.ETOOLARGE, "a batch holds at most %d transactions, this one has %d", models.MaxBatch, len(in.Transactions))
	}
	items := make([]models.TransactionInput, len(in.Transactions))
	decodeErrs := map[int]*models.Error{}
	for i, raw := range in.Transactions {
		if err := json.Unmarshal(raw, &items[i]); err != nil {
			e, _ := jsonError(err).(*models.Error)
			decodeErrs[i] = e
			items[i] = models.TransactionInput{}
		}
	}
	results, err := s.db.RecordTransactions(c.Request().Context(), principal(c), items)
	if err != nil {
		return err
	}
	out := batchOutput{Results: make([]batchResult, len(results))}
	for i := range results {
		if e := decodeErrs[i]; e != nil {
			results[i] = models.BatchResult{Index: i, Status: statusOf[e.Code], Error: e}
		}
		r := results[i]
		out.Results[i] = batchResult{Index: r.Index, ID: r.ID, Status: r.Status, Transaction: r.Transaction}
		if r.Error != nil {
			out.Results[i].Error = &errorDetail{Code: r.Error.Code, Message: r.Error.Message, Fields: r.Error.Fields}
		}
		switch r.Status {
		case http.StatusCreated:
			out.Created++
		case http.StatusOK:
			out.Replayed++
		default:
			out.Failed++
		}
	}
	return c.JSON(http.StatusOK, out)
}
